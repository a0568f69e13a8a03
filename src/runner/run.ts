/**
 * The run loop: open every step (loaded and attached), then start the
 * workload, let time pass (durations, the workload's exit, a snapshot taken,
 * or Ctrl-C/SIGTERM), stop each step (detach, drain, flush) and put what it
 * captured in DIR/raw (capture.ts); then evaluate DIR/raw (evaluate.ts: transform,
 * artifacts, assertions) and write the summary.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { bootToWallNs } from '../ebpf/clock.ts';
import { KernelError, UnsupportedError } from '../ebpf/errors.ts';
import { explain } from '../ebpf/reasons.ts';
import { openSession, probeSupport, type StepOutcome, type StepSession } from '../steps/index.ts';
import { GateSink, LineSink } from '../steps/sink.ts';
import type { StepContext } from '../steps/types.ts';
import { Triggers, type TriggeredResult } from './triggers.ts';
import type { GadgetDefinition } from '../steps/types.ts';
import { killRunningActions, recipeDirOf } from './actions.ts';
import { afterVerdict } from './after-verdict.ts';
import { artifactPath } from './artifacts.ts';
import { Capture, CAPTURE_PREFIX, type RunMeta, type StepMeta } from './capture.ts';
import type { ContainerSource } from '../containers/enrichment.ts';
import { liveContainers, writeContainerTable } from './containers.ts';
import { sweepStale } from './ownership.ts';
import { formatBytes, formatMs, parseDuration } from '../steps/duration.ts';
import type { LoadedRecipe, PlannedStep } from './recipe.ts';
import { judge, signalName } from './judge.ts';
import { renderMarkdown } from './report.ts';
import { oneLine } from './verdict.ts';
import { compileRedactor, type Redactor } from './redact.ts';
import { SCHEMA_VERSION, type StepEnd, type StepSummary, type Summary } from './summary.ts';
import { TOOL_VERSION } from './version.ts';
import { mark } from '../timing.ts';
import { Canary, canaryActions, canaryBudgetMs, canaryHelper, runCanary, type CanaryStep, type LivenessMode } from './canary.ts';
import { launcherArgv, loadSeccompProfile, seccompUnsupported, type SeccompPlan } from './seccomp.ts';
import {
  createWorkloadCgroup, destroyCgroup, destroyCgroupSync, invokingUser, startWorkload, sweepStaleCgroups,
  type StopResult, type Workload, type WorkloadCgroup, type WorkloadUser,
} from './workload.ts';

/** How long a stopped workload has between SIGTERM and SIGKILL unless the recipe says `grace`. */
const DEFAULT_GRACE_MS = 10_000;
/** A second signal or a crash waits this long at most for the killed workload to leave its cgroup. */
const ABANDON_WAIT_MS = 500;

export interface RunOptions {
  outDir: string;
  objectDir: string;
  /** opens a step's gadget; tests give a fake one */
  openSession?: typeof openSession;
  /** caps every step's duration (tests and dry runs) */
  maxDurationMs?: number;
  /** who runs the workload (src/cli/commands.ts resolves --user and the recipe's user); default: who started gadget-run */
  user?: WorkloadUser;
  /** write baselines from this run's keys (--update-baseline) */
  updateBaseline?: boolean;
  /** --junit FILE; default: the recipe's junit; false: none (a cluster node: the CLI writes the run's) */
  junit?: string | false;
  log?: (line: string) => void;
  /** told when the steps are attached and when capture ends (the CLI's progress line and event printer) */
  observer?: RunObserver;
  /** aborting stops the run as Ctrl-C does (the cluster agent's cancel; the library's signal); a signal name as the abort's reason is the one the summary gives */
  signal?: AbortSignal;
  /**
   * the run owns the process (the CLI, the agent; the default): SIGINT/SIGTERM stop it as an
   * abort does, and a second signal or an error nothing handled ends the process at once,
   * after killing the workload and writing a summary. false (the library): only `signal`
   * stops the run, and the process is left alone
   */
  processSignals?: boolean;
  /**
   * run the recipe's on_success/on_failure/on_cancel/on_exit actions after the verdict, as
   * this user (or not, saying why); absent: none run (a cluster node's share)
   */
  actions?: { user: WorkloadUser | { refused: string } };
  /** send the events where the recipe's `export:` says, after the verdict; default false (a cluster node's share) */
  exportEvents?: boolean;
  /** where the container table's names and Kubernetes fields come from (the agent adds its node's pods); default: defaultSources() */
  containerSources?: ContainerSource[];
  /** the recipe's seccomp profile, already read and checked (src/api/run.ts does it before --out is touched); default: read here */
  seccomp?: SeccompPlan;
}

/** A running step as the CLI's progress line and event printer see it. */
export interface ObservedStep {
  id: string;
  gadget: string;
  /** the gadget's event fields, in order */
  fields: string[];
  /** the NDJSON spool its events are appended to while it runs */
  spoolPath: string;
  durationMs?: number;
  /** events and lost so far: the session's while it runs, its outcome once stopped */
  progress(): { events: number; lost?: number };
}

export interface RunObserver {
  attached(steps: ObservedStep[]): void;
  /** every step stopped: spools are complete (and about to move into DIR/raw) */
  captured(): void;
}

interface StepRun {
  plan: PlannedStep;
  def: GadgetDefinition;
  spool: string;
  session?: StepSession;
  outcome?: StepOutcome;
  /** what capture knows; `ended` is capture's word for what stopped it (summary.json says ended_by) */
  summary: StepSummary & { ended?: StepEnd };
  /** it could not be opened for a reason of the machine (unsupported here, load or attach refused) */
  environmentFailure?: boolean;
  /** a start_on step: what its instances captured (triggers.ts), once capture ended */
  triggered?: TriggeredResult;
  /** resolves once the liveness canary is gone and the session no longer looks for it */
  canaryGone?: Promise<void>;
}

export async function runRecipe(loaded: LoadedRecipe, opts: RunOptions): Promise<Summary> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`gadget-run: ${line}\n`));
  const { recipe } = loaded;
  const started = Date.now();
  // the staging folders of runs that were SIGKILLed (ownership.ts names them), never a live run's
  const stale = await sweepStale(opts.outDir, CAPTURE_PREFIX).catch((err: Error) => {
    log(`could not clean up stale capture folders in ${opts.outDir}: ${err.message}`);
    return [];
  });
  for (const p of stale) log(`removed the capture folder of a run that is gone: ${p}`);
  const redactor = compileRedactor(recipe.redact);
  const capture = new Capture(opts.outDir);

  const summary: Summary = {
    schema_version: SCHEMA_VERSION,
    tool_version: TOOL_VERSION,
    recipe: recipe.name,
    file: loaded.file,
    status: 'passed',
    node: os.hostname(),
    kernel: os.release(),
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    steps: [],
    assertions: [],
    reasons: [],
  };
  const steps: StepRun[] = loaded.steps.map((plan) => ({
    plan,
    def: plan.def,
    spool: capture.spoolPath(plan.spec.id),
    summary: { id: plan.spec.id, gadget: plan.spec.gadget, status: 'ok', events: 0, lost: 0, artifacts: [], durationMs: 0 },
  }));
  summary.steps = steps.map((s) => s.summary);
  // start_on steps open at their trigger (triggers.ts); the rest now
  const startNow = steps.filter((s) => !s.plan.trigger?.start);
  const required = startNow.filter((s) => !s.plan.spec.optional);
  // nothing the recipe needs could be traced here: the machine's fault, not the policy's (exit 3)
  const nothingTraced = () => required.length > 0 && required.every((s) => s.environmentFailure);
  let couldNotTrace = false;
  // a step whose capture failed (a full disk, an I/O error) ends the run: every step stops, the workload is killed
  const failure = new CaptureFailure();
  let spoolsDropped = false;

  let cgroup: WorkloadCgroup | undefined;
  let workload: Workload | undefined;
  let supervision: Supervision | undefined;
  let canary: Canary | undefined;
  const graceMs = recipe.grace === undefined ? DEFAULT_GRACE_MS : parseDuration(recipe.grace);
  // a second signal or a crash in JS ends the process here and now: kill the workload, leave a summary
  const interrupt = new Interrupt(graceMs, (why) => abandon({ cgroup, workload, spoolDir: capture.staging, outDir: opts.outDir, summary, steps, started, redactor }, why), opts.signal, opts.processSignals ?? true);
  let clock = 0n;
  const triggers: Triggers = new Triggers(loaded.steps, {
    open: (plan, id, narrow) => openInstance(plan, id, narrow, { triggers, cgroup, clock, opts, spoolPath: capture.spoolPath(id) }),
    spoolPath: (id) => capture.spoolPath(id),
    halted: Promise.race([interrupt.promise.then(() => 'signal' as const), failure.promise.then(() => 'error' as const)]),
    log,
    ...(loaded.steps.some((s) => s.trigger?.forEachContainer) ? { container: liveContainers(opts.containerSources) } : {}),
  });
  let seccomp: SeccompPlan | undefined;
  try {
    // a profile that cannot be enforced (src/api/run.ts refuses it before --out is touched) is an error before anything runs
    if (recipe.seccomp && recipe.run) seccomp = opts.seccomp ?? loadSeccompProfile(loaded.file, recipe.seccomp);
    // the workload cannot run as the recipe says on this machine: nothing is traced (exit 3)
    const cannotRun = (why: string) => {
      for (const s of steps) {
        s.environmentFailure = true;
        s.summary.status = 'unsupported';
        s.summary.reason = `not run: ${why}`;
      }
      return new CannotTrace(why);
    };
    if (recipe.run) {
      const noSeccomp = seccomp && seccompUnsupported(seccomp.summary.mode);
      if (noSeccomp) throw cannotRun(`the workload's seccomp profile cannot be applied: ${noSeccomp}`);
      await sweepStaleCgroups(log);
      try {
        cgroup = createWorkloadCgroup(recipe.name);
      } catch (err) {
        throw cannotRun((err as Error).message);
      }
    }
    void failure.promise.then(() => workload?.kill());
    clock = bootToWallNs();
    // a triggered step's gadget is probed (and its object's load cached) now: an unsupported one says so at once, and the trigger pays only for its own load
    if (!opts.openSession) await Promise.all(steps.filter((s) => !startNow.includes(s)).map((s) => probeTriggered(s, triggers, opts.objectDir, log)));
    const groups = recipe.sequential && !recipe.run ? startNow.map((s) => [s]) : [startNow];
    for (const group of groups) {
      if (interrupt.signal) break;
      // the canary starts while the steps load, and waits for its go
      canary = startCanary(group, recipe, cgroup, opts.objectDir);
      await Promise.all(group.map((s) => open(s, cgroup, clock, opts, log, triggers)));
      if (group.length === startNow.length && nothingTraced()) throw new CannotTrace('no required step could be traced here');
      await triggers.preload();
      summary.attachedAfterMs ??= Math.round(performance.now());
      const attached = group.reduce((n, s) => n + (s.session?.attached ?? 0), 0);
      log(`attached ${attached} programs for ${group.filter((s) => s.session).map((s) => s.plan.spec.id).join(', ') || 'no step'} ${formatMs(performance.now())} after start`);
      for (const s of group) s.session?.start();
      await proveLiveness(group, recipe, cgroup, canary, log);
      opts.observer?.attached(group.filter((s) => s.session).map((s) => observed(s, opts.maxDurationMs)));
      if (recipe.run && !workload && !interrupt.signal) {
        const user = opts.user ?? invokingUser();
        const under = seccomp ? `, under the seccomp profile ${seccomp.summary.profile} in ${seccomp.summary.mode} mode: ${seccomp.summary.syscalls} syscalls allowed` : '';
        log(`running: ${redactor.string(oneLine(recipe.run))} (as ${user.name}${under})`);
        workload = startWorkload(loaded.argv ?? recipe.run, cgroup!, user, loaded.env, seccomp ? launcherArgv(seccomp) : []);
        mark('workload spawned');
        supervision = superviseWorkload(workload, interrupt, { timeout: recipe.timeout, graceMs, maxDurationMs: opts.maxDurationMs }, log);
        summary.workload = { command: recipe.run, exitCode: null, user: { name: user.name, uid: user.uid, gid: user.gid }, ...(seccomp ? { seccomp: seccomp.summary } : {}) };
      }
      await Promise.all(group.map((s) => watch(s, workload, interrupt, failure, opts.maxDurationMs, triggers.stopRequested(s.plan.spec.id))));
      if (failure.error !== undefined) throw failure;
    }
    await triggers.finish();
    if (nothingTraced()) throw new CannotTrace('no required step could be traced here');
    if (workload) summary.workload = { ...summary.workload!, ...(await finishWorkload(workload, supervision!, log)) };
  } catch (err) {
    if (err instanceof CaptureFailure) {
      summary.status = 'error';
      summary.error = errorText(err.error);
      log(`error: ${summary.error}`);
      // what was spooled is broken, and on a full disk it holds the room the summary needs
      dropSpools(capture.staging, log);
      spoolsDropped = true;
      // killed as the failure came (the supervision's promise is not waited for: the run is over)
      if (workload) summary.workload = { ...summary.workload!, exitCode: await workload.exited, killed: true };
    } else if (err instanceof CannotTrace) {
      couldNotTrace = true;
      log(`cannot trace here: ${steps.filter((s) => s.summary.reason).map((s) => `${s.plan.spec.id}: ${s.summary.reason}`).join('; ') || err.message}`);
    } else {
      summary.status = 'error';
      summary.error = (err as Error).message;
      log(`error: ${summary.error}`);
    }
    await Promise.all([...steps.map((s) => stop(s, 'failed')), triggers.finish()]);
    for (const s of steps) {
      if (s.outcome || s.summary.status !== 'ok' || !startNow.includes(s)) continue;
      s.summary.status = couldNotTrace ? 'not_run' : 'failed';
      s.summary.reason = `not run: ${summary.error ?? 'nothing the recipe needs could be traced here'}`;
    }
  } finally {
    // every way out of the run kills what is left of the workload (background processes
    // its shell left behind too) and removes its cgroup
    workload?.kill();
    canary?.kill();
    if (cgroup) {
      try {
        await destroyCgroup(cgroup.path);
      } catch (err) {
        log(`could not remove the workload's cgroup: ${(err as Error).message}`);
      }
    }
    opts.observer?.captured();
  }

  // a signal while evaluating stops the JSONata then running; one during capture already had its effect
  const evaluating = new AbortController();
  if (!interrupt.signal) void interrupt.promise.then((signal) => evaluating.abort(signal));
  const run: RunMeta = {
    tool_version: TOOL_VERSION,
    node: summary.node,
    kernel: summary.kernel,
    startedAt: summary.startedAt,
    ...(summary.attachedAfterMs !== undefined ? { attachedAfterMs: summary.attachedAfterMs } : {}),
    ...(interrupt.signal ? { signal: interrupt.signal } : {}),
    ...(summary.error !== undefined ? { error: summary.error } : {}),
    ...(couldNotTrace ? { could_not_trace: true } : {}),
  };
  for (const s of steps) {
    if (!triggers.isTriggered(s.plan.spec.id)) continue;
    s.triggered = spoolsDropped ? undefined : triggers.collect(s.plan.spec.id);
    if (s.triggered) Object.assign(s.summary, summaryOfTriggered(s.triggered));
  }
  let captureError: string | undefined;
  if (spoolsDropped) {
    captureError = summary.error;
  } else {
    try {
      await writeContainerTable(capture.staging, Object.fromEntries(steps.map((s) => [s.plan.spec.id, s.outcome?.containers ?? s.triggered?.containers])), opts.containerSources);
      await capture.finish(steps.map((s) => stepMeta(s, summary)), run, redactor);
    } catch (err) {
      captureError = (err as Error).message;
      log(`error: ${captureError}`);
    }
  }
  try {
    // the second signal's handler stays on while evaluating and while the actions run
    const judged = await judge(loaded, opts.outDir, run, {
      log,
      signal: evaluating.signal,
      updateBaseline: opts.updateBaseline,
      started,
      redactor,
      ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
      ...(captureError !== undefined ? { captureError } : {}),
      known: { steps: summary.steps, ...(summary.workload ? { workload: summary.workload } : {}) },
    });
    return await afterVerdict(recipe, judged, {
      outDir: opts.outDir,
      recipeDir: recipeDirOf(loaded.file),
      ...(opts.actions ? { user: opts.actions.user } : {}),
      exportEvents: opts.exportEvents ?? false,
      log,
      redact: (v) => redactor.value(v),
    });
  } finally {
    interrupt.dispose();
  }
}

function observed(s: StepRun, maxDurationMs?: number): ObservedStep {
  let last: { events: number; lost?: number } = { events: 0 };
  const duration = maxDurationMs === undefined ? s.plan.durationMs : Math.min(s.plan.durationMs ?? maxDurationMs, maxDurationMs);
  return {
    id: s.plan.spec.id,
    gadget: s.plan.spec.gadget,
    fields: s.def.fields.map((f) => f.name),
    spoolPath: s.spool,
    durationMs: duration,
    progress: () => {
      // between stop's start and its outcome there is neither: keep the last figures
      if (s.session?.progress) last = s.session.progress();
      else if (s.outcome) last = { events: s.outcome.events, lost: s.outcome.lost };
      return last;
    },
  };
}

/** Every required step failed for a reason of the machine: stop before the workload and exit 3. */
class CannotTrace extends Error {}

function canaryStep(s: StepRun, recipe: LoadedRecipe['recipe'], cgroup: WorkloadCgroup | undefined): CanaryStep {
  return {
    id: s.plan.spec.id,
    def: s.def,
    params: s.plan.spec.params ?? {},
    liveness: (s.plan.spec.liveness ?? recipe.liveness ?? 'checked') as LivenessMode,
    budgetMs: canaryBudgetMs(s.plan.spec.canary_budget ?? recipe.canary_budget),
    containersOnly: !!s.plan.containers && !cgroup,
  };
}

/** The canary for this group's steps, started (waiting for its go), when one of them takes one. */
function startCanary(group: StepRun[], recipe: LoadedRecipe['recipe'], cgroup: WorkloadCgroup | undefined, objectDir: string): Canary | undefined {
  const actions = canaryActions(group.map((s) => canaryStep(s, recipe, cgroup)));
  const helper = canaryHelper(objectDir);
  if (!actions.length || !fs.existsSync(helper)) return undefined;
  return new Canary(helper, actions, cgroup?.path);
}

/**
 * Each step of the group proves it hears its scope (src/runner/canary.ts) before the
 * workload starts. A step whose canary did not come back failed for a reason of the
 * machine: it is stopped; a required one ends the run before the workload (exit 3).
 */
async function proveLiveness(group: StepRun[], recipe: LoadedRecipe['recipe'], cgroup: WorkloadCgroup | undefined, canary: Canary | undefined, log: (l: string) => void): Promise<void> {
  const candidates = group.filter((s) => s.session);
  if (!candidates.length) {
    canary?.kill();
    return;
  }
  const { results, gone } = await runCanary(candidates.map((s) => ({ ...canaryStep(s, recipe, cgroup), session: s.session })), canary);
  for (const s of candidates) s.canaryGone = gone;
  const deaf: StepRun[] = [];
  for (const s of candidates) {
    const result = results.get(s.plan.spec.id);
    if (!result) continue;
    s.summary.canary = result;
    if (result.state !== 'failed') continue;
    deaf.push(s);
    log(`step ${s.plan.spec.id}: could not trace: ${result.reason}`);
  }
  if (!deaf.length) return;
  await Promise.all(deaf.map((s) => stop(s, 'failed')));
  for (const s of deaf) {
    s.summary.status = 'failed';
    s.summary.reason = s.summary.canary!.reason;
    s.environmentFailure = true;
  }
  const required = deaf.filter((s) => !s.plan.spec.optional);
  if (!required.length) return;
  const others = group.filter((s) => s.session);
  await Promise.all(others.map((s) => stop(s, 'failed')));
  for (const s of others) {
    s.summary.status = 'not_run';
    s.summary.reason = `not run: step ${required[0].plan.spec.id} could not prove it hears its scope`;
  }
  throw new CannotTrace(`${required.map((s) => s.plan.spec.id).join(', ')}: ${required[0].summary.reason}`);
}

/** What capture knows of a step, for DIR/raw/<step>.meta.json. */
function stepMeta(s: StepRun, summary: Summary): StepMeta {
  const { id, gadget, events, lost, truncated, reason, why: whyData, warnings, durationMs, ended, canary } = s.summary;
  let status = s.summary.status;
  let why = reason;
  if (status === 'ok' && !s.outcome && !s.triggered) {
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
    ...(whyData !== undefined ? { why: whyData } : {}),
    ...(warnings?.length ? { warnings } : {}),
    ...(ended ? { ended } : {}),
    ...(canary ? { canary } : {}),
    durationMs,
    ...(summary.workload ? { workload: summary.workload } : {}),
    ...(s.outcome?.notTaken ? { snapshot_not_taken: true } : {}),
    ...(s.plan.documents ? { documents: s.plan.documents } : {}),
    ...(s.triggered ? { instances: s.triggered.instances, ...(s.triggered.suppressed ? { suppressed: s.triggered.suppressed } : {}) } : {}),
  };
}

/** What summary.json says of a start_on step from its instances. */
function summaryOfTriggered(r: TriggeredResult): Partial<StepSummary> {
  return {
    status: r.status,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    events: r.events,
    lost: r.lost,
    ...(r.truncated ? { truncated: r.truncated } : {}),
    durationMs: r.durationMs,
    ...(r.warnings.length ? { warnings: r.warnings } : {}),
    instances: r.instances,
    ...(r.suppressed ? { suppressed: r.suppressed } : {}),
  };
}

/** A start_on step's gadget, probed before the run: unsupported here, its trigger is not armed and the step says why. */
async function probeTriggered(s: StepRun, triggers: Triggers, objectDir: string, log: (l: string) => void): Promise<void> {
  const { why } = await probeSupport(s.def, objectDir);
  if (!why) return;
  const err = new UnsupportedError(s.def.id, why);
  triggers.disarm(s.plan.spec.id, err.message);
  s.summary.status = 'unsupported';
  s.summary.reason = err.message;
  s.summary.why = { kind: why.kind, ...explain(why) };
  s.environmentFailure = true;
  log(`step ${s.plan.spec.id}: unsupported: ${err.message}`);
}

/** The context every session of a step gets; `spool` and its sink (a tee when a trigger reads the step). */
function stepContext(plan: PlannedStep, spool: string, maxBytes: number, cgroup: WorkloadCgroup | { id: bigint; level: number } | undefined, clock: bigint, opts: RunOptions, triggers: Triggers, gated = false): StepContext {
  const tee = triggers.tee(plan.spec.id);
  const sink = gated ? new GateSink(spool, maxBytes, tee) : tee ? new LineSink(spool, maxBytes, tee) : undefined;
  return {
    id: plan.spec.id,
    params: plan.spec.params ?? {},
    filter: plan.filter,
    cgroup: cgroup && { id: cgroup.id, level: cgroup.level },
    ...(plan.containers ? { containers: plan.containers } : {}),
    spoolPath: spool,
    ...(sink ? { sink } : {}),
    bootToWallNs: clock,
    objectDir: opts.objectDir,
    options: plan.options,
    maxBytes,
  };
}

/** Open one instance of a start_on step, narrowed by its trigger (triggers.ts calls it). */
async function openInstance(
  plan: PlannedStep,
  id: string,
  narrow: { filter: PlannedStep['filter']; cgroup?: { id: bigint; level: number }; maxBytes: number; gated?: boolean },
  run: { triggers: Triggers; cgroup?: WorkloadCgroup; clock: bigint; opts: RunOptions; spoolPath: string },
): Promise<{ session: StepSession; gate?: GateSink }> {
  const ctx = { ...stepContext(plan, run.spoolPath, narrow.maxBytes, narrow.cgroup ?? run.cgroup, run.clock, run.opts, run.triggers, narrow.gated), filter: narrow.filter };
  try {
    const session = await (run.opts.openSession ?? openSession)(plan.def, ctx);
    return { session, ...(ctx.sink instanceof GateSink ? { gate: ctx.sink } : {}) };
  } catch (err) {
    ctx.sink?.close();
    fs.rmSync(run.spoolPath, { force: true });
    throw err;
  }
}

async function open(s: StepRun, cgroup: WorkloadCgroup | undefined, clock: bigint, opts: RunOptions, log: (l: string) => void, triggers: Triggers): Promise<void> {
  const ctx = stepContext(s.plan, s.spool, s.plan.maxBytes, cgroup, clock, opts, triggers);
  try {
    s.session = await (opts.openSession ?? openSession)(s.def, ctx);
  } catch (err) {
    ctx.sink?.close();
    s.summary.status = err instanceof UnsupportedError ? 'unsupported' : 'failed';
    s.environmentFailure = err instanceof UnsupportedError || err instanceof KernelError;
    s.summary.reason = (err as Error).message;
    if (err instanceof UnsupportedError) s.summary.why = { kind: err.reason.kind, ...explain(err.reason) };
    log(`step ${s.plan.spec.id}: ${s.summary.status}: ${s.summary.reason}`);
  }
}

/** The first failure of a step's capture (its session's loop threw); it ends every step. */
class CaptureFailure {
  error?: unknown;
  readonly promise: Promise<void>;
  private resolve!: () => void;

  constructor() {
    this.promise = new Promise((r) => (this.resolve = r));
  }

  fail(error: unknown): void {
    if (this.error !== undefined) return;
    this.error = error;
    this.resolve();
  }
}

/** Wait for whatever ends this step first, then stop it. */
async function watch(s: StepRun, workload: Workload | undefined, interrupt: Interrupt, failure: CaptureFailure, maxDurationMs?: number, stopOn?: Promise<void>): Promise<void> {
  if (!s.session) return;
  const started = performance.now();
  let duration = s.plan.durationMs;
  if (maxDurationMs !== undefined) duration = Math.min(duration ?? maxDurationMs, maxDurationMs);
  // a session whose own loop failed fails the run: stop() gives the failure as this step's reason
  const ends: Promise<StepEnd>[] = [
    s.session.finished.then(() => 'finished', (err: unknown) => (failure.fail(err), 'error')),
    interrupt.promise.then(() => 'interrupted'),
    failure.promise.then(() => 'error'),
  ];
  if (stopOn) ends.push(stopOn.then(() => 'stop_on'));
  let timer: NodeJS.Timeout | undefined;
  if (duration !== undefined) ends.push(new Promise((resolve) => (timer = setTimeout(() => resolve('duration'), duration))));
  let workloadExited = false;
  if (workload) ends.push(workload.exited.then(() => ((workloadExited = true), 'workload')));
  const why = await Promise.race(ends);
  clearTimeout(timer);
  s.summary.durationMs = Math.round(performance.now() - started);
  s.summary.ended = why;
  await stop(s, why === 'interrupted' ? 'interrupted' : why === 'error' ? 'failed' : 'ok');
  if (why === 'error') s.summary.reason ??= `stopped: another step's capture failed (${errorText(failure.error)})`;
  if (why === 'duration' && workload && !workloadExited) {
    const cap = duration !== s.plan.durationMs ? `--max-duration (${formatMs(duration!)})` : `its duration (${formatMs(duration!)})`;
    (s.summary.warnings ??= []).push(`${cap} ended this step before the workload exited: what the workload did after that is not in it (drop the step's duration to watch the whole workload)`);
  }
}

async function stop(s: StepRun, status: 'ok' | 'interrupted' | 'failed'): Promise<void> {
  const session = s.session;
  if (!session || s.outcome) return;
  s.session = undefined;
  try {
    // the canary's last events are known by its pid until it is gone
    await s.canaryGone;
    s.outcome = await session.stop();
    s.summary.status = status;
    s.summary.events = s.outcome.events;
    s.summary.lost = s.outcome.lost;
    if (s.outcome.warnings.length) s.summary.warnings = s.outcome.warnings;
    if (s.outcome.notTaken) {
      s.summary.status = 'not_run';
      s.summary.reason = `the snapshot was not taken: the step was stopped (${s.summary.ended ?? status}) before its delay of ${formatMs(parseDuration(s.plan.options.delay as number | string))}; shorten the delay${s.plan.spec.optional ? '' : ' or mark the step optional'}`;
    }
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

interface Supervision {
  stoppedBy?: 'timeout' | 'signal' | 'max-duration';
  /** resolves once the stopped workload's cgroup is empty */
  stopped?: Promise<StopResult>;
}

/**
 * From its start: stop the workload (SIGTERM to every process in its cgroup,
 * SIGKILL after the grace period) at its timeout, at --max-duration, or on
 * an interrupt (Ctrl-C reaches it through the terminal's process group too;
 * a SIGTERM sent to us does not).
 */
function superviseWorkload(
  workload: Workload,
  interrupt: Interrupt,
  limits: { timeout?: string | number; graceMs: number; maxDurationMs?: number },
  log: (l: string) => void,
): Supervision {
  const state: Supervision = {};
  let exited = false;
  const stopFor = (why: NonNullable<Supervision['stoppedBy']>, message: string) => {
    if (exited || state.stoppedBy) return;
    state.stoppedBy = why;
    log(`${message}: stopping the workload (SIGTERM, SIGKILL after ${formatMs(limits.graceMs)})`);
    state.stopped = workload.stop(limits.graceMs);
  };
  const timers: NodeJS.Timeout[] = [];
  if (limits.timeout !== undefined) timers.push(setTimeout(() => stopFor('timeout', `workload timed out after ${limits.timeout}`), parseDuration(limits.timeout)));
  if (limits.maxDurationMs !== undefined) timers.push(setTimeout(() => stopFor('max-duration', `--max-duration ${formatMs(limits.maxDurationMs!)} reached`), limits.maxDurationMs));
  void interrupt.promise.then((signal) => stopFor('signal', signal));
  void workload.exited.then(() => {
    exited = true;
    for (const t of timers) clearTimeout(t);
  });
  return state;
}

/** The workload's end as the summary records it; resolves once its shell exited and, when it was stopped, its cgroup is empty. */
async function finishWorkload(workload: Workload, supervision: Supervision, log: (l: string) => void) {
  const exitCode = await workload.exited;
  const forced = (await supervision.stopped)?.forced ?? false;
  log(`workload exited with ${exitCode}${forced ? ' (killed: it outlived its grace period after SIGTERM)' : ''}`);
  return {
    exitCode,
    ...(supervision.stoppedBy === 'timeout' ? { timedOut: true } : {}),
    ...(supervision.stoppedBy ? { stoppedBy: supervision.stoppedBy } : {}),
    ...(forced ? { killed: true } : {}),
  };
}

/** Why the process is going away at once. */
type Abandon = { signal: NodeJS.Signals; error?: undefined } | { error: unknown; signal?: undefined };

/**
 * SIGINT/SIGTERM: the first one stops the run gracefully (the workload gets
 * its grace period). A second one, or a crash in JS (an uncaught exception,
 * an unhandled rejection), ends the process at once: `onAbandon` kills the
 * workload's cgroup and leaves a summary, synchronously, first.
 */
class Interrupt {
  signal?: NodeJS.Signals;
  readonly promise: Promise<NodeJS.Signals>;
  private readonly onSignal: (signal: NodeJS.Signals) => void;
  private readonly onCrash: (error: unknown) => void;

  constructor(graceMs: number, onAbandon: (why: Abandon) => void, abort?: AbortSignal, private readonly processSignals = true) {
    let resolve!: (s: NodeJS.Signals) => void;
    this.promise = new Promise((r) => (resolve = r));
    // a cancel from outside is a first Ctrl-C: detach and keep what was captured
    const cancel = () => {
      if (this.signal) return;
      this.signal = signalName(abort?.reason) as NodeJS.Signals;
      resolve(this.signal);
    };
    if (abort?.aborted) cancel();
    else abort?.addEventListener('abort', cancel, { once: true });
    this.onSignal = (signal) => {
      if (this.signal) {
        process.stderr.write(`gadget-run: second ${signal}: killing the workload and exiting now\n`);
        this.abandon(onAbandon, { signal });
        // die by the signal itself: process.exit() would wait on a BPF load still running
        // off the main thread (its libbpf log callback needs this thread) and hang
        process.kill(process.pid, signal);
        return;
      }
      this.signal = signal;
      process.stderr.write(`gadget-run: ${signal}: detaching and writing what was captured; the workload has ${formatMs(graceMs)} to exit (again to exit at once)\n`);
      resolve(signal);
    };
    this.onCrash = (error) => {
      process.stderr.write(`gadget-run: stopping on an error nothing handled: ${(error as Error)?.stack ?? String(error)}\n`);
      this.abandon(onAbandon, { error });
      process.exit(1);
    };
    if (!processSignals) return;
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('uncaughtException', this.onCrash);
    process.on('unhandledRejection', this.onCrash);
  }

  private abandon(onAbandon: (why: Abandon) => void, why: Abandon): void {
    this.dispose();
    try {
      onAbandon(why);
    } catch (err) {
      process.stderr.write(`gadget-run: while cleaning up: ${(err as Error).message}\n`);
    }
  }

  dispose(): void {
    if (!this.processSignals) return;
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('uncaughtException', this.onCrash);
    process.off('unhandledRejection', this.onCrash);
  }
}

interface RunState {
  cgroup?: WorkloadCgroup;
  workload?: Workload;
  spoolDir: string;
  outDir: string;
  summary: Summary;
  steps: StepRun[];
  started: number;
  redactor: Redactor;
}

/**
 * The way out that cannot wait: kill and remove the workload's cgroup, drop
 * the spool (which also frees room on a full disk), and write a summary that
 * says what happened, as far as the filesystem lets us. Synchronous.
 */
function abandon(run: RunState, why: Abandon): void {
  const say = (line: string) => process.stderr.write(`gadget-run: ${line}\n`);
  run.workload?.kill();
  killRunningActions();
  if (run.cgroup && !destroyCgroupSync(run.cgroup.path, ABANDON_WAIT_MS)) say(`could not remove the workload's cgroup ${run.cgroup.path} (a later run removes it)`);
  dropSpools(run.spoolDir, say);
  const { summary } = run;
  const what = why.signal ? `second ${why.signal}: stopped at once, nothing captured was written` : errorText(why.error);
  if (why.signal) {
    summary.status = 'interrupted';
    summary.signal = why.signal;
  } else {
    summary.status = 'error';
  }
  summary.error = what;
  for (const s of run.steps) {
    if (s.outcome || s.summary.status !== 'ok') continue;
    s.summary.status = why.signal ? 'interrupted' : 'failed';
    s.summary.reason = what;
  }
  if (summary.workload && summary.workload.exitCode === null) summary.workload.killed = true;
  summary.durationMs = Date.now() - run.started;
  try {
    summary.reasons = [what];
    const redacted = run.redactor.value(summary) as Summary;
    writeTextAtomicSync(artifactPath(run.outDir, 'summary.json'), JSON.stringify(redacted, null, 2) + '\n');
    writeTextAtomicSync(artifactPath(run.outDir, 'report.md'), renderMarkdown(redacted));
  } catch (err) {
    say(`could not write the summary in ${run.outDir}: ${(err as Error).message}`);
  }
}

/** Remove the capture's staging folder, truncating its spools first. */
function dropSpools(dir: string, log: (line: string) => void): void {
  try {
    // the sinks may still hold the files open, and an unlinked open file keeps its blocks,
    // which a full disk needs back for the summary
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) fs.truncateSync(path.join(dir, f));
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    log(`could not remove ${dir}: ${(err as Error).message}`);
  }
}

/** A system error (a full disk) as it is, with the way out; anything else is our bug. */
function errorText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string') return `internal error: ${e?.message ?? String(error)}`;
  const hint = e.code === 'ENOSPC' || e.code === 'EDQUOT' ? ' — the filesystem of the output folder is full: free space there or give --out on a larger one' : '';
  return `${e.message}${hint}`;
}

function writeTextAtomicSync(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
