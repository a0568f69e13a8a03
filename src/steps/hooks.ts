/**
 * A gadget's hooks in words, and its variants in order of preference
 * (types.ts GadgetVariant). Pure: the CLI's `gadgets` imports it without
 * loading the kernel side; prepare.ts probes what these name.
 */
import type { GadgetDefinition, GadgetVariant, Requirement } from './types.ts';

/** A requirement in a few words: `tracepoint sched/sched_process_exec`, `kprobe cap_capable`. */
export function requirementName(r: Requirement): string {
  if ('tracepoint' in r) return `tracepoint ${r.tracepoint}`;
  if ('iterator' in r) return `iterator ${r.iterator}`;
  if ('perfEvent' in r) return `perf event ${r.perfEvent}`;
  if ('kprobe' in r) return `kprobe ${r.kprobe}`;
  if ('fentry' in r) return `fentry ${r.fentry}`;
  if ('program' in r) return r.program;
  return `kfunc ${r.kfunc}`;
}

/** A gadget's variants in order of preference; one without `variants` is one variant named after its first hook. */
export function variantsOf(def: GadgetDefinition): GadgetVariant[] {
  if (def.variants?.length) return def.variants;
  const first = def.requires[0];
  const name = first ? requirementName(first) + (def.requires.length > 1 ? ` (+${def.requires.length - 1})` : '') : 'no hook';
  return [{ name, requires: [], programs: [] }];
}


/** The environment variable that pins variants: `gadget=variant`, several joined by `;`. */
export const VARIANT_ENV = 'GADGET_RUN_VARIANT';

/** GADGET_RUN_VARIANT (or a definition's pinnedVariant) names what is not there: a bad command line. */
export class VariantPinError extends Error {
  override name = 'VariantPinError';
}

let knownGadgets: readonly string[] | undefined;

/** The registry's gadget ids, so a pin naming another is an error (src/steps/index.ts sets them). */
export function setKnownGadgets(ids: readonly string[]): void {
  knownGadgets = ids;
}

/**
 * The pins of GADGET_RUN_VARIANT (`trace/capabilities=kprobe cap_capable;top/tcp=fexit tcp_sendmsg
 * and tcp_recvmsg`): gadget id → variant name. Throws, saying what to write, for an entry that is
 * not `gadget=variant`, a gadget named twice, or an id that is no gadget.
 */
export function variantPins(value = process.env[VARIANT_ENV]): Map<string, string> {
  const pins = new Map<string, string>();
  for (const entry of (value ?? '').split(';').map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const id = entry.slice(0, eq).trim();
    const variant = entry.slice(eq + 1).trim();
    if (eq < 0 || !id || !variant) throw new VariantPinError(`${VARIANT_ENV}: "${entry}" is not gadget=variant (e.g. ${VARIANT_ENV}='trace/capabilities=kprobe cap_capable'; several joined by ";")`);
    if (pins.has(id)) throw new VariantPinError(`${VARIANT_ENV}: ${id} is pinned twice`);
    if (knownGadgets && !knownGadgets.includes(id)) throw new VariantPinError(`${VARIANT_ENV}: ${id} is not a gadget (gadget-run gadgets lists them)`);
    pins.set(id, variant);
  }
  return pins;
}

/**
 * The variant a gadget is pinned to (its own `pinnedVariant`, else GADGET_RUN_VARIANT's entry for
 * it), or undefined when none is. Throws, naming the gadget's variants, when the pin names none of them.
 */
export function pinnedVariant(def: GadgetDefinition): GadgetVariant | undefined {
  const name = def.pinnedVariant ?? variantPins().get(def.id);
  if (name === undefined) return undefined;
  const variants = variantsOf(def);
  const v = variants.find((x) => x.name === name);
  if (!v) {
    const from = def.pinnedVariant !== undefined ? 'pinnedVariant' : VARIANT_ENV;
    throw new VariantPinError(`${from}: ${def.id} has no variant "${name}"; its variants: ${variants.map((x) => `"${x.name}"`).join(', ')}`);
  }
  return v;
}
