/**
 * The run loop: open every step (loaded and attached), then start the
 * workload, let time pass (durations, the workload's exit, a snapshot taken,
 * or Ctrl-C/SIGTERM), stop each step (detach, drain, flush) and put what it
 * captured in DIR/raw (capture.ts); then evaluate DIR/raw (evaluate.ts: transform,
 * artifacts, assertions) and write the summary.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { bootToWallNs } from '../ebpf/clock.ts';
import { UnsupportedError } from '../ebpf/errors.ts';
import { openSession, type StepOutcome, type StepSession } from '../steps/index.ts';
import type { GadgetDefinition } from '../steps/types.ts';
import { artifactPath, writeTextAtomic } from './artifacts.ts';
import { Capture, type StepMeta } from './capture.ts';
import { writeContainerTable } from './containers.ts';
import { formatBytes, formatMs, parseDuration } from './duration.ts';
import type { LoadedRecipe, PlannedStep } from './recipe.ts';
import { evaluate } from './evaluate.ts';
import { oneLine, renderMarkdown } from './report.ts';
import type { StepEnd, StepSummary, Summary } from './summary.ts';
import { createWorkloadCgroup, removeWorkloadCgroup, startWorkload, type Workload, type WorkloadCgroup } from './workload.ts';

export interface RunOptions {
  outDir: string;
  objectDir: string;
  /** opens a step's gadget; tests give a fake one */
  openSession?: typeof openSession;
  /** caps every step's duration (tests and dry runs) */
  maxDurationMs?: number;
  log?: (line: string) => void;
}

interface StepRun {
  plan: PlannedStep;
  def: GadgetDefinition;
  spool: string;
  session?: StepSession;
  outcome?: StepOutcome;
  summary: StepSummary;
}

export async function runRecipe(loaded: LoadedRecipe, opts: RunOptions): Promise<Summary> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`gadget-run: ${line}\n`));
  const { recipe } = loaded;
  const started = Date.now();
  const capture = new Capture(opts.outDir);

  const summary: Summary = {
    recipe: recipe.name,
    file: loaded.file,
    status: 'passed',
    node: os.hostname(),
    kernel: os.release(),
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    steps: [],
    assertions: [],
  };
  const steps: StepRun[] = loaded.steps.map((plan) => ({
    plan,
    def: plan.def,
    spool: capture.spoolPath(plan.spec.id),
    summary: { id: plan.spec.id, gadget: plan.spec.gadget, status: 'ok', events: 0, lost: 0, artifacts: [], durationMs: 0 },
  }));
  summary.steps = steps.map((s) => s.summary);

  const interrupt = new Interrupt();
  let cgroup: WorkloadCgroup | undefined;
  let workload: Workload | undefined;
  let supervision: { timedOut: boolean } | undefined;
  try {
    if (recipe.run) cgroup = createWorkloadCgroup(recipe.name);
    const clock = bootToWallNs();
    const groups = recipe.sequential && !recipe.run ? steps.map((s) => [s]) : [steps];
    for (const group of groups) {
      if (interrupt.signal) break;
      await Promise.all(group.map((s) => open(s, cgroup, clock, opts, log)));
      summary.attachedAfterMs ??= Math.round(performance.now());
      const attached = group.reduce((n, s) => n + (s.session?.attached ?? 0), 0);
      log(`attached ${attached} programs for ${group.filter((s) => s.session).map((s) => s.plan.spec.id).join(', ') || 'no step'} ${formatMs(performance.now())} after start`);
      for (const s of group) s.session?.start();
      if (recipe.run && !workload) {
        log(`running: ${oneLine(recipe.run)}`);
        workload = startWorkload(recipe.run, cgroup!);
        supervision = superviseWorkload(workload, interrupt, recipe.timeout, log);
        summary.workload = { command: recipe.run, exitCode: null };
      }
      await Promise.all(group.map((s) => watch(s, workload, interrupt, opts.maxDurationMs)));
    }
    if (workload) {
      const exitCode = await finishWorkload(workload, supervision!, log);
      summary.workload = { command: recipe.run!, exitCode: exitCode.code, ...(exitCode.timedOut ? { timedOut: true } : {}) };
    }
  } catch (err) {
    summary.status = 'error';
    summary.error = (err as Error).message;
    log(`error: ${summary.error}`);
    await Promise.all(steps.map((s) => stop(s, 'failed')));
    for (const s of steps) {
      if (s.outcome || s.summary.status !== 'ok') continue;
      s.summary.status = 'failed';
      s.summary.reason = `not run: ${summary.error}`;
    }
    if (workload) workload.child.kill('SIGTERM');
  } finally {
    if (cgroup) await removeWorkloadCgroup(cgroup);
  }

  // a signal while evaluating stops the JSONata then running; one during capture already had its effect
  const evaluating = new AbortController();
  if (!interrupt.signal) void interrupt.promise.then(() => evaluating.abort());
  try {
    await writeContainerTable(capture.staging, Object.fromEntries(steps.map((s) => [s.plan.spec.id, s.outcome?.containers])));
    await capture.finish(steps.map((s) => stepMeta(s, summary)));
    const evaluation = await evaluate(recipe, opts.outDir, { log, signal: evaluating.signal });
    summary.steps = evaluation.steps;
    summary.assertions = evaluation.assertions;
  } catch (err) {
    summary.status = 'error';
    summary.error = (err as Error).message;
    log(`error: ${summary.error}`);
  }
  interrupt.dispose();

  if (interrupt.signal) {
    summary.status = 'interrupted';
    summary.signal = interrupt.signal;
  } else if (summary.status !== 'error') {
    const stepFailed = summary.steps.some((s, i) => s.status === 'truncated' || (!steps[i].plan.spec.optional && ['failed', 'unsupported', 'not_run'].includes(s.status)));
    const assertionFailed = summary.assertions.some((a) => a.status === 'failed' || a.status === 'not_evaluated');
    if (stepFailed || assertionFailed || summary.workload?.timedOut) summary.status = 'failed';
  }
  summary.durationMs = Date.now() - started;
  await writeTextAtomic(artifactPath(opts.outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  await writeTextAtomic(artifactPath(opts.outDir, 'report.md'), renderMarkdown(summary));
  return summary;
}

/** What capture knows of a step, for DIR/raw/<step>.meta.json. */
function stepMeta(s: StepRun, summary: Summary): StepMeta {
  const { id, gadget, events, lost, truncated, reason, warnings, durationMs, ended } = s.summary;
  let status = s.summary.status;
  let why = reason;
  if (status === 'ok' && !s.outcome) {
    status = 'not_run';
    why = 'the run was stopped before this step started';
  }
  return {
    id,
    gadget,
    fields: s.def.fields.map((f) => f.name),
    status,
    events,
    lost,
    ...(truncated !== undefined ? { truncated } : {}),
    ...(why !== undefined ? { reason: why } : {}),
    ...(warnings?.length ? { warnings } : {}),
    ...(ended ? { ended } : {}),
    durationMs,
    ...(summary.workload ? { workload: summary.workload } : {}),
  };
}

async function open(s: StepRun, cgroup: WorkloadCgroup | undefined, clock: bigint, opts: RunOptions, log: (l: string) => void): Promise<void> {
  try {
    s.session = await (opts.openSession ?? openSession)(s.def, {
      id: s.plan.spec.id,
      params: s.plan.spec.params ?? {},
      filter: s.plan.filter,
      cgroup: cgroup && { id: cgroup.id, level: cgroup.level },
      ...(s.plan.containers ? { containers: s.plan.containers } : {}),
      spoolPath: s.spool,
      bootToWallNs: clock,
      objectDir: opts.objectDir,
      ringBytes: s.plan.ringBytes,
      delayMs: s.plan.delayMs,
      maxBytes: s.plan.maxBytes,
    });
  } catch (err) {
    s.summary.status = err instanceof UnsupportedError ? 'unsupported' : 'failed';
    s.summary.reason = (err as Error).message;
    log(`step ${s.plan.spec.id}: ${s.summary.status}: ${s.summary.reason}`);
  }
}

/** Wait for whatever ends this step first, then stop it. */
async function watch(s: StepRun, workload: Workload | undefined, interrupt: Interrupt, maxDurationMs?: number): Promise<void> {
  if (!s.session) return;
  const started = performance.now();
  let duration = s.plan.durationMs;
  if (maxDurationMs !== undefined) duration = Math.min(duration ?? maxDurationMs, maxDurationMs);
  const ends: Promise<StepEnd>[] = [s.session.finished.then(() => 'finished'), interrupt.promise.then(() => 'interrupted')];
  let timer: NodeJS.Timeout | undefined;
  if (duration !== undefined) ends.push(new Promise((resolve) => (timer = setTimeout(() => resolve('duration'), duration))));
  if (workload) ends.push(workload.exited.then(() => 'workload'));
  const why = await Promise.race(ends);
  clearTimeout(timer);
  s.summary.durationMs = Math.round(performance.now() - started);
  s.summary.ended = why;
  await stop(s, why === 'interrupted' ? 'interrupted' : 'ok');
}

async function stop(s: StepRun, status: 'ok' | 'interrupted' | 'failed'): Promise<void> {
  const session = s.session;
  if (!session || s.outcome) return;
  s.session = undefined;
  try {
    s.outcome = await session.stop();
    s.summary.status = status;
    s.summary.events = s.outcome.events;
    s.summary.lost = s.outcome.lost;
    if (s.outcome.warnings.length) s.summary.warnings = s.outcome.warnings;
    if ((s.outcome.truncated ?? 0) > 0) {
      s.summary.status = 'truncated';
      s.summary.truncated = s.outcome.truncated;
      s.summary.reason = `reached its max_bytes (${formatBytes(s.plan.maxBytes)}): ${s.outcome.truncated} later events were not written; raise max_bytes or narrow the filter`;
    }
  } catch (err) {
    s.summary.status = 'failed';
    s.summary.reason = (err as Error).message;
  }
}

/**
 * From its start: SIGTERM the workload at its timeout or on an interrupt (Ctrl-C reaches it
 * through the terminal's process group too; a SIGTERM sent to us does not).
 */
function superviseWorkload(workload: Workload, interrupt: Interrupt, timeout: string | number | undefined, log: (l: string) => void) {
  const state = { timedOut: false };
  const timer = timeout === undefined ? undefined : setTimeout(() => {
    state.timedOut = true;
    log(`workload timed out after ${timeout}: stopping it`);
    workload.child.kill('SIGTERM');
  }, parseDuration(timeout));
  void interrupt.promise.then(() => workload.child.kill('SIGTERM'));
  void workload.exited.then(() => clearTimeout(timer));
  return state;
}

async function finishWorkload(workload: Workload, supervision: { timedOut: boolean }, log: (l: string) => void) {
  const code = await workload.exited;
  log(`workload exited with ${code}`);
  return { code, timedOut: supervision.timedOut };
}

/** SIGINT/SIGTERM: the first one stops the run gracefully; a second one exits at once (the kernel detaches on exit). */
class Interrupt {
  signal?: NodeJS.Signals;
  readonly promise: Promise<NodeJS.Signals>;
  private readonly handler: (signal: NodeJS.Signals) => void;

  constructor() {
    let resolve!: (s: NodeJS.Signals) => void;
    this.promise = new Promise((r) => (resolve = r));
    this.handler = (signal) => {
      if (this.signal) {
        // die by the signal itself: process.exit() would wait on a BPF load still running
        // off the main thread (its libbpf log callback needs this thread) and hang
        process.stderr.write(`gadget-run: second ${signal}: exiting now\n`);
        this.dispose();
        process.kill(process.pid, signal);
        return;
      }
      this.signal = signal;
      process.stderr.write(`gadget-run: ${signal}: detaching and writing what was captured (again to exit at once)\n`);
      resolve(signal);
    };
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}
