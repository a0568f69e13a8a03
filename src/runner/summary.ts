/** The shape of DIR/summary.json: the contract CI jobs and other tools read. */
export type RunStatus = 'passed' | 'failed' | 'interrupted' | 'error';
/** not_run: the run ended (an error, a signal) before the step's turn came */
export type StepStatus = 'ok' | 'failed' | 'unsupported' | 'interrupted' | 'truncated' | 'not_run';
/**
 * not_evaluated: it reads a step that did not run (or whose transform failed), so its
 * value would say nothing; skipped: every step it reads is optional and did not run
 */
export type AssertionStatus = 'passed' | 'failed' | 'not_evaluated' | 'skipped';

/** What ended a step's capture. */
export type StepEnd = 'duration' | 'workload' | 'finished' | 'interrupted' | 'error';

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
  warnings?: string[];
  /** how long the step watched */
  durationMs: number;
  /** what ended the capture */
  ended?: StepEnd;
  /** the gadget's own markdown view of its result for report.md (profile/block-io's histogram bars) */
  report?: string;
}

export interface AssertionSummary {
  name: string;
  /** status === 'passed' */
  passed: boolean;
  /** always written since assertions could be not_evaluated or skipped; absent in older summaries */
  status?: AssertionStatus;
  message: string;
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
}

export interface Summary {
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
}

export function exitCodeFor(summary: Summary): number {
  switch (summary.status) {
    case 'passed':
      return 0;
    case 'interrupted':
      return summary.signal === 'SIGTERM' ? 143 : 130;
    default:
      return 1;
  }
}
