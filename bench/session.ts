/**
 * gadget-run's trace/open as the runner would open it for
 * `filter: comm==<the workload's comm>` with the default ring size; shared by
 * the in-process variant (run.ts) and the cold-start probe (attach.ts) so
 * both measure the same thing.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootToWallNs } from '../src/ebpf/clock.ts';
import { parseFilter } from '../src/steps/filter.ts';
import { gadgets, openSession, type StepSession } from '../src/steps/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** the default ring size (bpf/include/gadget.h, StepContext.ringBytes) */
export const RING_BYTES = 16 << 20;

export function openTraceOpen(spoolPath: string, comm: string): Promise<StepSession> {
  return openSession(gadgets['trace/open'], {
    id: 'bench',
    params: {},
    filter: parseFilter(`comm==${comm}`),
    spoolPath,
    bootToWallNs: bootToWallNs(),
    objectDir: path.join(ROOT, 'build/bpf'),
    ringBytes: RING_BYTES,
    delayMs: 0,
    maxBytes: Number.MAX_SAFE_INTEGER,
  });
}
