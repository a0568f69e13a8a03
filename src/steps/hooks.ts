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

