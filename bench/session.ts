/**
 * Gadgets as the runner would open them, with the default ring size: trace/open
 * for `filter: comm==<the workload's comm>` is shared by the in-process variant
 * (run.ts) and the cold-start probe (attach.ts) so both measure the same
 * thing; catalogue.ts opens the other gadgets the same way.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootToWallNs } from '../src/ebpf/clock.ts';
import { parseFilter } from '../src/steps/filter.ts';
import { findGadget, openSession, type StepSession } from '../src/steps/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** the default ring size (bpf/include/gadget.h, StepContext.ringBytes) */
export const RING_BYTES = 16 << 20;

export function openTraceOpen(spoolPath: string, comm: string): Promise<StepSession> {
  return openGadget('trace/open', spoolPath, `comm==${comm}`);
}

/** Any gadget of the registry as a recipe step with this filter, params and mode keys would open it. */
export function openGadget(
  id: string, spoolPath: string, filter: string, params: Record<string, unknown> = {},
  options: Record<string, unknown> = { buffer: `${RING_BYTES >> 20}MiB` },
): Promise<StepSession> {
  const def = findGadget(id);
  if (!def) throw new Error(`no gadget ${id} in the registry`);
  return openSession(def, {
    id: 'bench',
    params,
    filter: parseFilter(filter),
    spoolPath,
    bootToWallNs: bootToWallNs(),
    objectDir: path.join(ROOT, 'build/bpf'),
    options,
    maxBytes: Number.MAX_SAFE_INTEGER,
  });
}
