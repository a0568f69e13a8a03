/**
 * gadgets() and gadget(): the catalogue and whether this kernel runs each gadget, as
 * `gadget-run gadgets --json` prints it (the CLI prints these).
 */
import { explain, unsupportedMessage } from '../ebpf/reasons.ts';
import { UnknownGadgetError } from '../runner/errors.ts';
import { findGadget, gadgets as registry, probeSupport } from '../steps/index.ts';
import type { FieldSpec, GadgetDefinition } from '../steps/types.ts';
import { livenessOf } from '../steps/liveness.ts';
import { defaultObjectDir } from '../util/package-root.ts';
import { useBtfOption } from './btf.ts';
import type { GadgetDetail, GadgetField, GadgetInfo, GadgetsOptions } from './types.ts';

/** Every gadget, each probed on this kernel (its hooks, and its object loaded and verified; cached per kernel build and object). */
export async function gadgets(opts: GadgetsOptions = {}): Promise<GadgetInfo[]> {
  useBtfOption(opts.btf);
  const rows: GadgetInfo[] = [];
  // one after another: a probe that loads an object must see only its own libbpf log
  for (const def of Object.values(registry as Record<string, GadgetDefinition>)) rows.push(await describe(def, opts, (f) => f.name));
  return rows;
}

/** One gadget with its fields typed and its hooks; UnknownGadgetError for an id no gadget has. */
export async function gadget(id: string, opts: GadgetsOptions = {}): Promise<GadgetDetail> {
  const def = findGadget(id);
  if (!def) throw new UnknownGadgetError(id, Object.keys(registry));
  useBtfOption(opts.btf);
  const field = (f: FieldSpec): GadgetField => ({ name: f.name, type: f.type, description: f.description, ...(f.names && f.type === 'number' ? { names: Object.values(f.names) } : {}) });
  return {
    ...(await describe(def, opts, field)),
    requires: def.requires,
    ...(def.variants ? { variants: def.variants.map((v) => ({ name: v.name, requires: v.requires })) } : {}),
  };
}

/** The row `gadgets --json` prints, its keys in that order, with each field as `field` says. */
async function describe<F>(def: GadgetDefinition, opts: GadgetsOptions, field: (f: FieldSpec) => F) {
  const { why, missingOptional, variant } = await probeSupport(def, opts.objects ?? defaultObjectDir());
  return {
    id: def.id,
    mode: def.mode,
    supported: !why,
    ...(!why && variant ? { variant: variant.name } : {}),
    ...(why ? { reason: unsupportedMessage(def.id, why), why: { kind: why.kind, ...explain(why) } } : {}),
    ...(missingOptional.length ? { missingOptional } : {}),
    description: def.description,
    fields: def.fields.map(field),
    kernelFilters: Object.keys(def.kernelFilters),
    ...(def.params ? { params: def.params } : {}),
    liveness: livenessInfo(def),
  };
}

function livenessInfo(def: GadgetDefinition): GadgetInfo['liveness'] {
  const l = livenessOf(def);
  return 'unproven' in l ? { provable: false, reason: l.unproven } : { provable: true, canary: [...l.canary] };
}
