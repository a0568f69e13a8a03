/**
 * The verdict: from what capture recorded (raw/run.json) and what evaluation found, the
 * run's status and every reason it did not pass. judge.ts calls it for `run`, `replay` and
 * `run --cluster`, so a replayed or merged folder gets the verdict a local run gets. Fails closed: a workload exit the recipe
 * did not expect, events lost past allow_lost, a required step that did not run, a new
 * baseline key, an assertion that failed or could not be evaluated.
 */
import type { RunMeta } from './capture.ts';
import type { Evaluation } from './evaluate.ts';
import type { Recipe } from './recipe.ts';
import { SCHEMA_VERSION, type RunStatus, type StepStatus, type StepSummary, type Summary, type WorkloadSummary } from './summary.ts';

/**
 * A step with one of these statuses captured nothing to judge: it fails the run unless
 * the recipe marks it optional, and it fails a cluster node (src/k8s/agent.ts). The one
 * list every reporter and the agent use.
 */
export const NOT_CAPTURED: ReadonlySet<StepStatus> = new Set<StepStatus>(['failed', 'unsupported', 'not_run']);

/** Whether a step's status fails the run: a truncated one always (events are missing), one that captured nothing unless optional. */
export function stepStatusFails(s: Pick<StepSummary, 'status' | 'optional'>): boolean {
  return s.status === 'truncated' || (!s.optional && NOT_CAPTURED.has(s.status));
}

export function expectedExit(recipe: Recipe): (code: number) => boolean {
  const expect = recipe.expect_exit ?? 0;
  if (expect === 'any') return () => true;
  const codes = Array.isArray(expect) ? expect : [expect];
  return (code) => codes.includes(code);
}

/** Lost events that fail the step, or 0. */
export function lostPastAllowed(s: StepSummary): number {
  const allowed = s.allow_lost ?? false;
  if (allowed === true) return 0;
  return s.lost > (allowed === false ? 0 : allowed) ? s.lost : 0;
}

export function reasonsOf(recipe: Recipe, ev: Evaluation, workload: WorkloadSummary | undefined): string[] {
  const reasons: string[] = [];
  for (const s of ev.steps) {
    if (stepStatusFails(s)) {
      reasons.push(`step ${s.id} ${s.status}${s.reason ? `: ${s.reason}` : ''}`);
    }
    const lost = lostPastAllowed(s);
    if (lost) {
      const allowed = s.allow_lost === undefined || s.allow_lost === false ? 'none may be' : `at most ${s.allow_lost} may be`;
      reasons.push(`step ${s.id} lost ${lost} events in the kernel (ring buffer full; ${allowed}): raise its buffer, narrow its filter, or set allow_lost`);
    }
    if (s.baseline?.added.length && !s.baseline.updated) {
      reasons.push(`step ${s.id}: ${s.baseline.added.length} new key${s.baseline.added.length === 1 ? '' : 's'} not in ${s.baseline.file}: ${s.baseline.added.slice(0, 20).join(', ')}${s.baseline.added.length > 20 ? ', …' : ''} (review them, then run with --update-baseline)`);
    }
  }
  if (workload) {
    if (workload.timedOut) reasons.push(`the workload timed out (${oneLine(workload.command)})`);
    // stopped by gadget-run itself (--max-duration, a signal): its exit code is ours, not its verdict
    else if (workload.exitCode !== null && !workload.stoppedBy && !expectedExit(recipe)(workload.exitCode)) {
      reasons.push(`the workload exited with ${workload.exitCode} (expect_exit: ${JSON.stringify(recipe.expect_exit ?? 0)})`);
    }
  }
  for (const a of ev.assertions) {
    if (a.status === 'failed' || a.status === 'not_evaluated') reasons.push(`assertion "${a.name}" ${a.status === 'failed' ? 'failed' : 'was not evaluated'}: ${a.message}`);
  }
  return reasons;
}

/** The summary of a run (or a replay) from what capture recorded and what evaluation found. */
export function summarize(recipe: Recipe, file: string, run: RunMeta, ev: Evaluation, durationMs: number): Summary {
  let status: RunStatus;
  let reasons: string[];
  if (run.signal) {
    status = 'interrupted';
    reasons = [`interrupted by ${run.signal}`];
  } else if (run.could_not_trace) {
    status = 'could_not_trace';
    reasons = ev.steps.filter((s) => !s.optional).map((s) => `step ${s.id} ${s.status}${s.reason ? `: ${s.reason}` : ''}`);
  } else if (run.error) {
    status = 'error';
    reasons = [run.error];
  } else {
    reasons = reasonsOf(recipe, ev, ev.workload);
    status = reasons.length ? 'failed' : 'passed';
  }
  return {
    schema_version: SCHEMA_VERSION,
    tool_version: run.tool_version,
    recipe: recipe.name,
    file,
    status,
    ...(run.error ? { error: run.error } : {}),
    node: run.node,
    kernel: run.kernel,
    startedAt: run.startedAt,
    durationMs,
    ...(run.attachedAfterMs !== undefined ? { attachedAfterMs: run.attachedAfterMs } : {}),
    ...(ev.workload ? { workload: withExpectation(recipe, ev.workload) } : {}),
    steps: ev.steps,
    assertions: ev.assertions,
    ...(run.signal ? { signal: run.signal } : {}),
    reasons,
  };
}

function withExpectation(recipe: Recipe, w: WorkloadSummary): WorkloadSummary {
  return w.exitCode === null || w.stoppedBy ? w : { ...w, exitExpected: expectedExit(recipe)(w.exitCode) };
}

/** A multi-line workload as its first line and a line count. */
export function oneLine(command: string): string {
  const lines = command.trim().split('\n');
  return lines.length > 1 ? `${lines[0]} … (${lines.length} lines)` : lines[0];
}
