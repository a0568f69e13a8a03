/**
 * Liveness canaries (issue 17), the runner's side: after every step of a group
 * is attached and before the workload starts, one run of the canary helper
 * (bpf/canary/canary.c, built to build/bpf/canary) inside the workload's
 * cgroup makes the events the steps' gadgets name; each step waits, within its
 * budget, for one of them to come back through its ring, decoder and scope.
 * The sessions recognise the canary's events by its pid and drop them before
 * any filter (src/steps/liveness.ts), so they never reach results.
 *
 * A step's budget counts from the moment the helper reaches the step's own
 * action (it says so on its stdout, one line per action with the time), not from its start:
 * the actions run one after another, and on a slow machine (a TCG guest) the
 * ones before, a slow write or a private network namespace, can take longer
 * than a whole budget. A helper that never reaches a step's action fails that
 * step too, after REACH_LIMIT_MS.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_CANARY_BUDGET_MS, livenessOf, type CanaryAction } from '../steps/liveness.ts';
import { parseDuration } from '../steps/duration.ts';
import type { GadgetDefinition, StepSession } from '../steps/types.ts';
import type { CanarySummary } from './summary.ts';
import { mark } from '../timing.ts';

export type LivenessMode = 'checked' | 'proven' | 'off';

export interface CanaryStep {
  id: string;
  def: GadgetDefinition;
  /** the step's params (a gadget's canary may depend on them: trace/signal's signal) */
  params?: Record<string, unknown>;
  session?: StepSession;
  liveness: LivenessMode;
  budgetMs: number;
  /** the step is scoped to containers and not to the workload: the canary cannot run in its scope */
  containersOnly?: boolean;
}

/** What a step's liveness is before any canary runs: off, unproven (with why), or the actions to provoke. */
export function canaryPlan(s: CanaryStep): CanarySummary | CanaryAction[] {
  if (s.liveness === 'off') return { state: 'off' };
  const l = livenessOf(s.def, s.params);
  if ('unproven' in l) return { state: 'unproven', reason: l.unproven };
  if (!s.session?.canary) return { state: 'unproven', reason: `${s.def.id}'s session cannot tell the canary's events from others` };
  if (s.containersOnly) return { state: 'unproven', reason: 'the step watches containers, not the workload: the canary cannot run inside them' };
  return [...l.canary];
}

const POLL_MS = 1;
/** how long the helper may take to reach a step's action at all: a helper stuck before it fails the step */
export const REACH_LIMIT_MS = 30_000;

/** canary_budget: a number is ms (unlike durations), text a duration */
export const canaryBudgetMs = (v: string | number | undefined) => (v === undefined ? DEFAULT_CANARY_BUDGET_MS : typeof v === 'number' ? v : parseDuration(v));

/** The actions the steps' canaries need (none: no canary to run). */
export function canaryActions(steps: Omit<CanaryStep, 'session'>[]): CanaryAction[] {
  const actions = new Set<CanaryAction>();
  for (const s of steps) {
    const l = livenessOf(s.def, s.params);
    if (s.liveness === 'off' || s.containersOnly || 'unproven' in l) continue;
    for (const a of l.canary) actions.add(a);
  }
  return [...actions].sort((a, b) => order(a) - order(b));
}

/**
 * The canary helper, started while the steps load (its spawn is off the start's critical
 * path): it joins the cgroup and waits for the go that runCanary gives once they are attached.
 */
export class Canary {
  readonly pid?: number;
  stderr = '';
  readonly exited: Promise<void>;
  /** when (performance.now()) the helper said it reached each action */
  private readonly reached = new Map<string, number>();
  private lastReached?: string;
  private stdoutTail = '';
  private readonly child;
  private gone = false;

  constructor(readonly helper: string, actions: CanaryAction[], cgroupDir: string | undefined) {
    this.child = spawn(helper, [...(cgroupDir ? ['--cgroup', cgroupDir] : []), ...actions], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdout!.on('data', (d: Buffer) => {
      const lines = (this.stdoutTail + d.toString()).split('\n');
      this.stdoutTail = lines.pop()!;
      for (const line of lines) {
        const [a, at] = reachedLine(line);
        if (!this.reached.has(a)) this.reached.set(a, at);
        this.lastReached = a;
      }
    });
    this.exited = new Promise((resolve) => {
      const end = () => ((this.gone = true), resolve());
      this.child.on('exit', end);
      this.child.on('error', (err) => ((this.stderr += err.message), end()));
    });
    // a canary not waited for (no step attached) gets EPIPE on its go: not ours to report
    this.child.stdin!.on('error', () => {});
  }

  go(): void {
    this.child.stdin!.end('g');
  }

  /** when the helper reached the first of these actions (undefined: none yet) */
  reachedAt(actions: readonly CanaryAction[]): number | undefined {
    const at = actions.map((a) => this.reached.get(a)).filter((t) => t !== undefined);
    return at.length ? Math.min(...at) : undefined;
  }

  /** the action the helper said it reached last */
  get last(): string | undefined {
    return this.lastReached;
  }

  get done(): boolean {
    return this.gone;
  }

  kill(): void {
    if (!this.gone) this.child.kill('SIGKILL');
  }
}

/**
 * "ACTION NS": the helper reached ACTION at NS of CLOCK_MONOTONIC (process.hrtime's clock), as a
 * performance.now() time: a runner whose loop was busy when the line came still counts from the
 * action itself. A line without a time counts from now.
 */
function reachedLine(line: string): [string, number] {
  const space = line.lastIndexOf(' ');
  const ns = space > 0 ? line.slice(space + 1) : '';
  if (!/^\d+$/.test(ns)) return [line, performance.now()];
  const agoMs = Number(process.hrtime.bigint() - BigInt(ns)) / 1e6;
  return [line.slice(0, space), performance.now() - Math.max(0, agoMs)];
}

/** What came, per step, and when the canary is gone and its events are drained (until then its pid is still recognised). */
export interface CanaryOutcome {
  results: Map<string, CanarySummary>;
  gone: Promise<void>;
}

/**
 * Prove these steps (each attached and started) hear their scope: arm them with the canary's
 * pid, let it go, wait for each one's marker within its budget. The canary is then killed;
 * the steps stop recognising its pid once it is gone (`gone`), which the workload need not wait for.
 */
export async function runCanary(steps: CanaryStep[], canary: Canary | undefined): Promise<CanaryOutcome> {
  const results = new Map<string, CanarySummary>();
  const waiting: { s: CanaryStep; probe: NonNullable<StepSession['canary']>; actions: CanaryAction[] }[] = [];
  // steps that prove nothing still drop the canary's events (and let it past an egress block)
  const bystanders: NonNullable<StepSession['canary']>[] = [];
  for (const s of steps) {
    const plan = canaryPlan(s);
    if (!Array.isArray(plan)) {
      results.set(s.id, plan.state === 'unproven' && s.liveness === 'proven' ? { ...plan, state: 'failed', reason: `liveness: proven, and ${plan.reason}` } : plan);
      if (s.session?.canary) bystanders.push(s.session.canary);
      continue;
    }
    waiting.push({ s, probe: s.session!.canary!, actions: plan });
  }
  if (!waiting.length) {
    canary?.kill();
    return { results, gone: Promise.resolve() };
  }
  if (!canary || canary.pid === undefined) {
    const why = !canary || !fs.existsSync(canary.helper) ? 'the canary helper is missing: build it (make -C bpf) or set liveness: off' : `the canary helper did not start: ${canary.stderr}`;
    for (const { s } of waiting) results.set(s.id, { state: 'failed', reason: why });
    canary?.kill();
    return { results, gone: Promise.resolve() };
  }
  const armed: NonNullable<StepSession['canary']>[] = [];
  try {
    for (const probe of [...waiting.map((w) => w.probe), ...bystanders]) {
      probe.arm(canary.pid);
      armed.push(probe);
    }
    // what the kernel could not put in each ring so far: a ring that overflows while the canary
    // waits may have lost its marker, and proves the scope's events reach the ring all the same
    const lostAtGo = new Map(waiting.map(({ s }) => [s.id, lostOf(s)]));
    const missed = (s: CanaryStep): CanarySummary => {
      const lost = lostOf(s) - (lostAtGo.get(s.id) ?? 0);
      const why = `the ring was full while the canary waited (${lost} events lost): its marker may be among them`;
      if (lost > 0) return s.liveness === 'proven' ? { state: 'failed', ms: s.budgetMs, reason: `liveness: proven, and ${why}` } : { state: 'unproven', reason: `${why}; the lost events decide the verdict` };
      return failed(s, canary.stderr);
    };
    const t0 = performance.now();
    canary.go();
    let pending = waiting;
    while (pending.length) {
      pending = pending.filter(({ s, probe, actions }) => {
        const from = canary.reachedAt(actions);
        if (probe.check()) {
          results.set(s.id, { state: 'proven', ms: Math.max(1, Math.round(performance.now() - (from ?? t0))) });
          return false;
        }
        const now = performance.now();
        if (from !== undefined && now - from >= s.budgetMs) {
          results.set(s.id, missed(s));
          return false;
        }
        if (from === undefined && now - t0 >= REACH_LIMIT_MS) {
          results.set(s.id, notReached(s, actions, canary));
          return false;
        }
        return true;
      });
      if (!pending.length) break;
      // the canary is gone and its events were read: what did not come will not
      if (canary.done) {
        for (const w of pending) if (!w.probe.check()) results.set(w.s.id, missed(w.s));
        break;
      }
      await sleep(POLL_MS);
    }
    mark('canary came back');
  } finally {
    // from here the kernel's filters apply to it again; what it still does is dropped by pid
    for (const probe of armed) probe.release();
    canary.kill();
  }
  for (const w of waiting) if (!results.has(w.s.id)) results.set(w.s.id, failed(w.s, canary.stderr));
  // its pid is recognised until it is reaped, so a process that reuses the pid is never taken for it
  // a last drain can fail (a full disk): every probe is still disarmed, and the error reaches the
  // step's stop, which awaits `gone`; until then it is not an unhandled rejection
  const gone = canary.exited.then(() => {
    let first: unknown;
    for (const probe of armed) {
      try {
        probe.disarm();
      } catch (err) {
        first ??= err;
      }
    }
    mark('canary gone');
    if (first !== undefined) throw first;
  });
  gone.catch(() => {});
  return { results, gone };
}

/** events the step's kernel side could not put in its ring so far (0 where it cannot say) */
function lostOf(s: CanaryStep): number {
  return s.session?.progress?.().lost ?? 0;
}

function failed(s: CanaryStep, stderr: string): CanarySummary {
  const said = stderr.trim().split('\n').filter(Boolean).pop();
  return {
    state: 'failed',
    ms: s.budgetMs,
    reason: `attached, but no event from the traced scope reached the ring in ${s.budgetMs} ms${said ? ` (${said})` : ''}`,
  };
}

function notReached(s: CanaryStep, actions: readonly CanaryAction[], canary: Canary): CanarySummary {
  const last = canary.last ? `its last was ${canary.last}` : 'it reached none';
  return { state: 'failed', reason: `the canary helper did not reach ${actions.join(' or ')} in ${REACH_LIMIT_MS / 1000} s (${last}): nothing proved the step hears its scope` };
}

/** a slow write holds back what follows it: after the quick ones; exec ends the helper: last */
const order = (a: CanaryAction) => (a === 'exec' ? 2 : a.startsWith('slow=') ? 1 : 0);

/** Where the helper is: next to the BPF objects. */
export const canaryHelper = (objectDir: string) => path.join(objectDir, 'canary');
