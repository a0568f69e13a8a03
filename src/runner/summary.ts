/**
 * The shape of DIR/summary.json: the contract CI jobs and other tools read, published
 * as schemas/summary.schema.json. SCHEMA_VERSION changes when a field changes meaning
 * or goes away; new optional fields do not change it.
 */
import type { Explained } from '../ebpf/reasons.ts';
import type { SeccompSummary } from './seccomp.ts';

/** what `gadgets --json` and summary.json say of an unsupported gadget: its reason as data */
export type ExplainedReason = Explained & { kind: string };
export const SCHEMA_VERSION = 1;

/**
 * could_not_trace: every required step failed for a reason of the machine (not root, no
 * BTF, a hook missing, load or attach refused) before anything was captured: exit 3, so
 * CI can tell "this runner cannot trace" from "the policy failed"
 */
export type RunStatus = 'passed' | 'failed' | 'interrupted' | 'error' | 'could_not_trace';
/**
 * not_run: the run ended (an error, a signal) before the step's turn came; not_triggered:
 * a start_on step whose trigger never came (it fails nothing by itself; assertions reading
 * it follow its if_not_triggered)
 */
export type StepStatus = 'ok' | 'failed' | 'unsupported' | 'interrupted' | 'truncated' | 'not_run' | 'not_triggered';
/**
 * not_evaluated: it reads a step that did not run (or whose transform failed), so its
 * value would say nothing; skipped: every step it reads is optional and did not run
 */
export type AssertionStatus = 'passed' | 'failed' | 'not_evaluated' | 'skipped';

/** What ended a step's capture, as capture records it (raw/<step>.meta.json). */
export type StepEnd = 'duration' | 'workload' | 'finished' | 'interrupted' | 'error' | 'stop_on';
/** The same, as summary.json says it: a finished step is a snapshot taken, an interrupt a signal. */
export type EndedBy = 'workload' | 'duration' | 'signal' | 'snapshot' | 'stop_on';

export function endedBy(end: StepEnd | undefined): EndedBy | undefined {
  switch (end) {
    case 'duration':
    case 'workload':
    case 'stop_on':
      return end;
    case 'finished':
      return 'snapshot';
    case 'interrupted':
      return 'signal';
    default:
      return undefined;
  }
}

/** New and removed keys against a step's committed baseline. */
export interface BaselineDiff {
  /** the baseline file, as the recipe names it */
  file: string;
  added: string[];
  removed: string[];
  /** --update-baseline wrote the file */
  updated?: boolean;
  /** a profile's baseline (.folded): the functions whose share of the samples changed most, in points of percent */
  profile?: {
    samples: number;
    baselineSamples: number;
    grew: FunctionShare[];
    shrank: FunctionShare[];
    /** the differential flame graph, relative to the output folder */
    diff: string;
  };
}

/** A function's share of a profile's samples (inclusive: in any frame of a stack), now and in the baseline, in percent. */
export interface FunctionShare {
  function: string;
  before: number;
  after: number;
}

/** Why a failed assertion failed: the value it computed and the events it picked out. */
export interface Evidence {
  /** the side that was computed, e.g. `$count(steps.execs[comm = "curl"])` */
  expr: string;
  value: unknown;
  /** the first offending events of a filtered step (`steps.x[pred]`), at most 10 */
  events?: Record<string, unknown>[];
  /** how many events the filter picked in all */
  total?: number;
}

/** What ended an instance: its duration, its stop_on event, the end of the run, a snapshot taken, a signal, a failure. */
export type InstanceEnd = 'duration' | 'stop_on' | 'run_end' | 'snapshot' | 'signal' | 'error';

/** One instance of a triggered step, as raw/<step>.meta.json and summary.json record it. */
export interface InstanceRecord {
  /** the for_each value it runs for */
  key?: string;
  /** a cluster run's: the node whose agent ran it (src/k8s/cluster-run.ts mergeRaw) */
  node?: string;
  triggered_by: {
    step: string;
    /** the trigger event's fields the step's trigger used (filter, for_each, scope) and its timestamp */
    fields: Record<string, unknown>;
    /** the trigger event's timestamp */
    at: string;
  };
  /** its programs attached (wall clock) */
  startedAt?: string;
  stoppedAt?: string;
  /** ms from seeing the trigger event to the instance attached (preload: to its gate open) */
  attachMs?: number;
  /** lazy: loaded and attached at the trigger; preload: attached with the run, kept from the trigger on */
  attach?: 'lazy' | 'preload';
  status: StepStatus;
  ended_by?: InstanceEnd;
  events: number;
  lost: number;
  truncated?: number;
  reason?: string;
  warnings?: string[];
}

export interface StepSummary {
  id: string;
  gadget: string;
  status: StepStatus;
  /** events after filters */
  events: number;
  /** events dropped in the kernel because the ring buffer was full */
  lost: number;
  /** events not written because the step reached its max_bytes (status truncated) */
  truncated?: number;
  /** files written, relative to the output folder */
  artifacts: string[];
  /** why the step failed or is unsupported */
  reason?: string;
  /** an unsupported step's reason as data (src/ebpf/reasons.ts explain) */
  why?: ExplainedReason;
  warnings?: string[];
  /** how long the step watched */
  durationMs: number;
  /** what ended the capture */
  ended_by?: EndedBy;
  /** the recipe marked it optional: unsupported or failed, it does not fail the run */
  optional?: boolean;
  /** events lost in the kernel that the recipe allows (allow_lost) */
  allow_lost?: boolean | number;
  baseline?: BaselineDiff;
  /** the gadget's own markdown view of its result for report.md (profile/block-io's histogram bars) */
  report?: string;
  /** a start_on step: each instance its trigger started, in order (src/runner/triggers.ts) */
  instances?: InstanceRecord[];
  /** a for_each step: distinct values that came past max_instances and were not traced */
  suppressed?: number;
  /** its liveness canary (src/runner/canary.ts): whether the step proved it hears its scope before the workload */
  canary?: CanarySummary;
  /** the egress step: what it enforced (src/runner/egress.ts) */
  egress?: {
    mode: 'audit' | 'block';
    /** every entry enforced, in rule order (an event's `rule` is an index here): the recipe's, the baseline's, then loopback and the resolvers when allowed */
    allow: string[];
    allow_loopback: boolean;
    allow_resolver: boolean;
    baseline?: string;
  };
}

/**
 * proven: the canary's event came back through ring, decoder and scope in `ms`; unproven: the
 * gadget (or this step's scope) has no canary, `reason` says why; off: the recipe said
 * liveness: off; failed: it did not come within the budget (the step could not trace)
 */
export interface CanarySummary {
  state: 'proven' | 'unproven' | 'off' | 'failed';
  /** round trip from the canary's start to its event read, ms (proven), or the budget waited (failed) */
  ms?: number;
  reason?: string;
}

export interface AssertionSummary {
  name: string;
  /** status === 'passed' */
  passed: boolean;
  /** always written since assertions could be not_evaluated or skipped; absent in older summaries */
  status?: AssertionStatus;
  message: string;
  evidence?: Evidence;
}

export interface WorkloadSummary {
  command: string;
  /** the shell's exit code (128+signal when a signal ended it); null when the run ended before it */
  exitCode: number | null;
  /** who it ran as (every run records it; optional for summaries built elsewhere, e.g. reporter tests) */
  user?: { name: string; uid: number; gid: number };
  /** it outlived the recipe's timeout (fails the run) */
  timedOut?: boolean;
  /** why gadget-run stopped it, when it did not exit by itself */
  stoppedBy?: 'timeout' | 'signal' | 'max-duration';
  /** it was still running after its grace period (or the run was abandoned) and was SIGKILLed */
  killed?: boolean;
  /** the exit code is one the recipe's expect_exit allows (default: 0 only) */
  exitExpected?: boolean;
  /** the seccomp profile it ran under (the recipe's `seccomp:`) */
  seccomp?: SeccompSummary;
}

/** An action the verdict called for (on_success, on_failure, on_cancel, on_exit) and how it ended; it never changes the verdict. */
export interface ActionSummary {
  hook: 'on_success' | 'on_failure' | 'on_cancel' | 'on_exit';
  /** the recipe's name for it, else `<hook>-<n>` */
  name: string;
  /** a command's argv */
  command?: string[];
  /** a zx script, as the recipe names it, and its arguments */
  script?: string;
  args?: string[];
  /** who it ran as (absent when it did not run) */
  user?: { name: string; uid: number; gid: number };
  /** ok: exit 0; failed: another exit or a signal; timed_out: killed at its timeout; error: could not start; not_run: no user may run it */
  status: 'ok' | 'failed' | 'timed_out' | 'error' | 'not_run';
  exitCode: number | null;
  /** the signal that ended it */
  signal?: string;
  durationMs: number;
  timeoutMs: number;
  reason?: string;
  /** bytes it wrote on stdout and stderr */
  output_bytes?: number;
  /** the last 4 KiB of its output */
  output_tail?: string;
  /** its output (the last 1 MiB), relative to the output folder */
  log?: string;
}

/** The OpenTelemetry logs export's end (src/runner/otlp.ts); it never changes the verdict, and never records the headers. */
export interface OtlpExportSummary {
  /** without any user or password it held */
  endpoint: string;
  /** the steps exported, when the recipe named them */
  steps?: string[];
  /** events read for export */
  records: number;
  /** log records the endpoint accepted */
  sent: number;
  /** log records not delivered: a batch given up on, the queue full, the time spent */
  dropped: number;
  /** log records the endpoint took the request of but reported rejected (partialSuccess) */
  rejected?: number;
  /** requests the endpoint accepted */
  batches: number;
  failed_batches: number;
  retries: number;
  durationMs: number;
  /** why records were dropped or rejected */
  reason?: string;
}

export interface Summary {
  schema_version: number;
  /** the gadget-run that wrote it */
  tool_version: string;
  recipe: string;
  file: string;
  status: RunStatus;
  /** why the run as a whole could not go on or finish (status error; a second signal too) */
  error?: string;
  node: string;
  kernel: string;
  startedAt: string;
  durationMs: number;
  /** ms from the gadget-run process start until every step's programs were attached */
  attachedAfterMs?: number;
  workload?: WorkloadSummary;
  steps: StepSummary[];
  assertions: AssertionSummary[];
  /** set when the run was stopped by a signal */
  signal?: string;
  /** every reason the run did not pass, one line each */
  reasons: string[];
  /** the actions the verdict called for, in the order they ran */
  actions?: ActionSummary[];
  /** what the recipe's `export:` sent */
  export?: { otlp?: OtlpExportSummary };
  /** written by `gadget-run replay` from this captured folder */
  replayed_from?: string;
}

export function exitCodeFor(summary: Summary): number {
  switch (summary.status) {
    case 'passed':
      return 0;
    case 'interrupted':
      return summary.signal === 'SIGTERM' ? 143 : 130;
    case 'could_not_trace':
      return 3;
    default:
      return 1;
  }
}
