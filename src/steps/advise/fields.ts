import type { GadgetDefinition } from '../types.ts';

/** The document fields of an advise gadget for a step's params (evaluation's columns, planning's field checks). */
export function adviseFields(advise: NonNullable<GadgetDefinition['advise']>, params: Record<string, unknown> | undefined): string[] {
  return typeof advise.fields === 'function' ? advise.fields(params ?? {}) : advise.fields;
}
