/**
 * Liveness canaries (issue 17): before the workload starts, each step proves
 * that its hooks deliver events from the scope it watches. The runner runs
 * bpf/canary/canary.c inside that scope with the actions the step's gadget
 * names; the session recognises the canary's events by its process (one
 * tgid: every action stays inside it), counts them as the proof and drops
 * them before the filter, the sink and the event count. While the canary
 * runs, the kernel's task filters let it through (bpf/include/filter.h
 * gadget_canary_tgid); the scope does not.
 */
import type { BpfObject } from '../ebpf/object.ts';
import type { GadgetDefinition, Liveness } from './types.ts';

export type { CanaryAction, CanaryProbe, Liveness } from './types.ts';

/** The budget a canary has to come back through the ring, unless the recipe says canary_budget. */
export const DEFAULT_CANARY_BUDGET_MS = 500;

const MODE_UNPROVEN: Partial<Record<GadgetDefinition['mode'], string>> = {
  snapshot: 'a snapshot walks the kernel\'s tables once, at its moment: it has no hook that could be silent before the workload',
  profile: 'samples and histograms are read once, at the step\'s end: there is no event to wait for before the workload',
};

/** How a gadget's liveness is proven, or why it cannot be. */
export function livenessOf(def: GadgetDefinition, params: Record<string, unknown> = {}): Liveness {
  if (typeof def.liveness === 'function') return def.liveness(params);
  if (def.liveness) return def.liveness;
  return { unproven: MODE_UNPROVEN[def.mode] ?? `${def.id} has no canary yet` };
}

/** The part every mode shares: the tgid, the kernel's exemption, what came. */
export class CanaryGate {
  tgid = 0;
  seen = false;

  constructor(private readonly obj: BpfObject) {}

  arm(tgid: number): void {
    this.tgid = tgid;
    this.seen = false;
    this.obj.writeGlobal('.data.canary', 'gadget_canary_tgid', tgid);
  }

  /** true (and remembered) when the event is the canary's: the caller drops it */
  marker(pid: number): boolean {
    if (this.tgid === 0 || pid !== this.tgid) return false;
    this.seen = true;
    return true;
  }

  /** the kernel's task filters apply to the canary again */
  release(): void {
    this.obj.writeGlobal('.data.canary', 'gadget_canary_tgid', 0);
  }

  /** its events are no longer recognised */
  disarm(): void {
    this.tgid = 0;
  }
}
