/**
 * Liveness canaries (issue 17), the runner's side: after every step of a group
 * is attached and before the workload starts, one run of the canary helper
 * (bpf/canary/canary.c, built to build/bpf/canary) inside the workload's
 * cgroup makes the events the steps' gadgets name; each step waits, within its
 * budget, for one of them to come back through its ring, decoder and scope.
 * The sessions recognise the canary's events by its pid and drop them before
 * any filter (src/steps/liveness.ts), so they never reach results.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { livenessOf, type CanaryAction } from '../steps/liveness.ts';
import type { GadgetDefinition, StepSession } from '../steps/types.ts';
import type { CanarySummary } from './summary.ts';

export type LivenessMode = 'checked' | 'proven' | 'off';

export interface CanaryStep {
  id: string;
  def: GadgetDefinition;
  session?: StepSession;
  liveness: LivenessMode;
  budgetMs: number;
  /** the step is scoped to containers and not to the workload: the canary cannot run in its scope */
  containersOnly?: boolean;
}

/** What a step's liveness is before any canary runs: off, unproven (with why), or the actions to provoke. */
export function canaryPlan(s: CanaryStep): CanarySummary | CanaryAction[] {
  if (s.liveness === 'off') return { state: 'off' };
  const l = livenessOf(s.def);
  if ('unproven' in l) return { state: 'unproven', reason: l.unproven };
  if (!s.session?.canary) return { state: 'unproven', reason: `${s.def.id}'s session cannot tell the canary's events from others` };
  if (s.containersOnly) return { state: 'unproven', reason: 'the step watches containers, not the workload: the canary cannot run inside them' };
  return [...l.canary];
}

const POLL_MS = 1;

/**
 * Run the canary for these steps (each attached and started); say per step what came.
 * `cgroupDir`: the workload's cgroup (none: the step is node-wide, the canary runs in ours).
 */
export async function runCanary(steps: CanaryStep[], helper: string, cgroupDir: string | undefined): Promise<Map<string, CanarySummary>> {
  const out = new Map<string, CanarySummary>();
  const waiting: { s: CanaryStep; probe: NonNullable<StepSession['canary']> }[] = [];
  const actions = new Set<CanaryAction>();
  for (const s of steps) {
    const plan = canaryPlan(s);
    if (!Array.isArray(plan)) {
      out.set(s.id, plan.state === 'unproven' && s.liveness === 'proven' ? { ...plan, state: 'failed', reason: `liveness: proven, and ${plan.reason}` } : plan);
      continue;
    }
    for (const a of plan) actions.add(a);
    waiting.push({ s, probe: s.session!.canary! });
  }
  if (!waiting.length) return out;
  if (!fs.existsSync(helper)) {
    for (const { s } of waiting) out.set(s.id, { state: 'failed', reason: `the canary helper ${helper} is missing: build it (make -C bpf) or set liveness: off` });
    return out;
  }
  const args = [...(cgroupDir ? ['--cgroup', cgroupDir] : []), ...[...actions].sort((a, b) => order(a) - order(b))];
  const child = spawn(helper, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', (err) => {
      stderr += err.message;
      resolve(null);
    });
  });
  const armed: typeof waiting = [];
  try {
    if (child.pid === undefined) throw new Error(`could not start ${helper}: ${(await exited, stderr)}`);
    for (const w of waiting) {
      w.probe.arm(child.pid);
      armed.push(w);
    }
    const t0 = performance.now();
    child.stdin!.end('g');
    let done = false;
    void exited.then(() => (done = true));
    const budget = Math.max(...waiting.map((w) => w.s.budgetMs));
    let pending = waiting;
    while (pending.length) {
      const now = performance.now() - t0;
      pending = pending.filter(({ s, probe }) => {
        if (probe.check()) {
          out.set(s.id, { state: 'proven', ms: Math.max(1, Math.round(performance.now() - t0)) });
          return false;
        }
        if (now >= s.budgetMs) {
          out.set(s.id, failed(s, stderr));
          return false;
        }
        return true;
      });
      if (!pending.length || now >= budget) break;
      // the canary is gone and its events were read: what did not come will not
      if (done) {
        await sleep(POLL_MS);
        for (const w of pending) if (!w.probe.check()) out.set(w.s.id, failed(w.s, stderr));
        break;
      }
      await sleep(POLL_MS);
    }
    // the canary must be gone before its pid stops being recognised (a workload could reuse it)
    if (!done) child.kill('SIGKILL');
    await exited;
  } finally {
    for (const w of armed) w.probe.disarm();
  }
  for (const w of waiting) if (!out.has(w.s.id)) out.set(w.s.id, failed(w.s, stderr));
  return out;
}

function failed(s: CanaryStep, stderr: string): CanarySummary {
  const said = stderr.trim().split('\n').filter(Boolean).pop();
  return {
    state: 'failed',
    ms: s.budgetMs,
    reason: `attached, but no event from the traced scope reached the ring in ${s.budgetMs} ms${said ? ` (${said})` : ''}`,
  };
}

/** exec ends the helper: last */
const order = (a: CanaryAction) => (a === 'exec' ? 1 : 0);

/** Where the helper is: next to the BPF objects. */
export const canaryHelper = (objectDir: string) => path.join(objectDir, 'canary');
