/**
 * The errors the library API throws, by class: catch the one whose way out you have.
 * RecipeError (fix the recipe at each problem's file:line:col), OptionError (an option that
 * cannot work), OutDirError, ReplayError, UnknownGadgetError; and for a run, the two ends
 * that are not a verdict: CouldNotTraceError (this machine cannot trace what the recipe
 * needs: exit 3) and InterruptedError (the abort signal, or SIGINT/SIGTERM: exit 130/143).
 * Both carry the result when a run got as far as writing one (summary.json and the files).
 */
import type { RunResult } from './types.ts';

export { OptionError, OutDirError, RecipeError, ReplayError, UnknownGadgetError, type Place, type Problem } from '../runner/errors.ts';

/** Nothing the recipe (or the stream) needs could be traced here: not root, no BTF, a hook missing, load or attach refused. */
export class CouldNotTraceError extends Error {
  constructor(
    message: string,
    /** the run's result (summary.json was written), for run(); absent for stream() */
    readonly result?: RunResult,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CouldNotTraceError';
  }
}

/** The run was stopped before its end (the abort signal, or a signal to the process); what it captured was judged and written. */
export class InterruptedError extends Error {
  constructor(readonly result: RunResult) {
    super(`${result.recipe}: interrupted by ${result.signal ?? 'SIGINT'}; what was captured is in ${result.paths.out}`);
    this.name = 'InterruptedError';
  }

  /** SIGINT for an abort or Ctrl-C, SIGTERM for a termination */
  get signal(): string {
    return this.result.signal ?? 'SIGINT';
  }
}
