/**
 * Judging a captured folder: evaluate DIR/raw (evaluate.ts), decide the verdict
 * (verdict.ts), redact, write summary.json, report.md and the JUnit file. `run`,
 * `replay` and `run --cluster` differ in how raw/ was filled and call this one
 * function, so none of them can judge lost events, baselines, secrets or an abort
 * differently. What a path knows besides raw/ (a cluster's nodes) comes in as
 * `extra` and can only add reasons, never take one away.
 * The terminal report, GitHub annotations and the exit code stay at the CLI,
 * made from the Summary this returns.
 */
import path from 'node:path';
import { artifactPath, writeTextAtomic } from './artifacts.ts';
import type { RunMeta } from './capture.ts';
import { evaluate, type Evaluation } from './evaluate.ts';
import type { LoadedRecipe } from './recipe.ts';
import { compileRedactor, type Redactor } from './redact.ts';
import { renderMarkdown } from './report.ts';
import { renderHtml } from './report-html.ts';
import type { Summary } from './summary.ts';
import { summarize } from './verdict.ts';

export interface JudgeExtra {
  /** why the run did not pass besides what raw/ says (a cluster's failed or missing nodes): they fail a run that would pass */
  reasons?: string[];
  /** why the run as a whole did not pass, when raw/ does not say (a cluster's nodes); an error of its own wins */
  error?: string;
  /** fields the summary gains (the cluster section, replayed_from) */
  fields?: Record<string, unknown>;
  /** Markdown appended to report.md, made from the redacted summary */
  markdown?: (summary: Summary) => string;
}

export interface JudgeOptions {
  /** where outputs, summary.json, report.md and the recipe's junit go; default: the captured folder */
  outDir?: string;
  /** write each step's baseline from these keys instead of failing on new ones (--update-baseline) */
  updateBaseline?: boolean;
  /**
   * aborting stops the evaluation running and the run ends interrupted; the abort's
   * reason, when a signal name, is the signal the summary gives (default SIGINT)
   */
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** --junit FILE; default: the recipe's `junit:` inside outDir; false: none at all (a cluster node: the CLI writes the run's) */
  junit?: string | false;
  /** Date.now() when the run (or replay) started, for durationMs; default: now */
  started?: number;
  /** default: the recipe's patterns and the built-in ones */
  redactor?: Redactor;
  /**
   * capture could not put raw/ in place: the verdict is an error with what capture
   * knew (`known`), and nothing is evaluated
   */
  captureError?: string;
  /** the steps and workload as capture ended them, for a summary when evaluation fails */
  known?: Pick<Evaluation, 'steps' | 'workload'>;
  extra?: JudgeExtra;
}

export async function judge(loaded: LoadedRecipe, dir: string, run: RunMeta, opts: JudgeOptions = {}): Promise<Summary> {
  const started = opts.started ?? Date.now();
  const log = opts.log ?? (() => {});
  const outDir = opts.outDir ?? dir;
  let summary = await verdict(loaded, dir, run, opts, started, log);
  const extra = opts.extra ?? {};
  if (extra.reasons?.length) summary = { ...summary, status: summary.status === 'passed' ? 'failed' : summary.status, reasons: [...summary.reasons, ...extra.reasons] };
  if (extra.error !== undefined && summary.error === undefined) summary = { ...summary, error: extra.error };
  // a signal while evaluating: what was evaluated stands, the run says it was stopped
  if (opts.signal?.aborted && !run.signal) {
    const signal = signalName(opts.signal.reason);
    summary = { ...summary, status: 'interrupted', signal, reasons: [`interrupted by ${signal}`] };
  }
  // the raw record is redacted as capture seals it; evidence, reasons and a replay's newer patterns are not
  const redactor = opts.redactor ?? compileRedactor(loaded.recipe.redact);
  const redacted = redactor.value({ ...summary, ...extra.fields }) as Summary;
  await writeTextAtomic(artifactPath(outDir, 'summary.json'), JSON.stringify(redacted, null, 2) + '\n');
  await writeTextAtomic(artifactPath(outDir, 'report.md'), renderMarkdown(redacted) + (extra.markdown?.(redacted) ?? ''));
  await writeTextAtomic(artifactPath(outDir, 'report.html'), await renderHtml(redacted, dir, (v) => redactor.value(v)));
  const junit = junitPath(loaded, outDir, opts.junit);
  if (junit !== undefined) {
    // junit-report-builder is loaded only by runs that write JUnit (start-up: cli.ts)
    const { renderJunit } = await import('./reporters/junit.ts');
    await writeTextAtomic(junit, renderJunit(redacted));
  }
  return redacted;
}

/** Where the JUnit report goes: --junit FILE, else the recipe's `junit:` inside outDir; false or neither: none. */
export function junitPath(loaded: LoadedRecipe, outDir: string, junit?: string | false): string | undefined {
  if (junit === false) return undefined;
  return junit ?? (loaded.recipe.junit === undefined ? undefined : artifactPath(outDir, loaded.recipe.junit));
}

/** The signal an abort carries as its reason (the CLI's signal handlers give it), else Ctrl-C's. */
export function signalName(reason: unknown): string {
  return typeof reason === 'string' && reason.startsWith('SIG') ? reason : 'SIGINT';
}

/** The summary from raw/, or, when capture or evaluation failed, an error with what is known. */
async function verdict(loaded: LoadedRecipe, dir: string, run: RunMeta, opts: JudgeOptions, started: number, log: (line: string) => void): Promise<Summary> {
  const { recipe, file } = loaded;
  let error = opts.captureError;
  if (error === undefined) {
    try {
      const evaluation = await evaluate(recipe, dir, {
        log,
        outDir: opts.outDir ?? dir,
        // baselines are relative to the recipe, wherever the run was started from
        recipeDir: path.dirname(file),
        updateBaseline: opts.updateBaseline,
        signal: opts.signal,
      });
      return summarize(recipe, file, run, evaluation, Date.now() - started);
    } catch (err) {
      error = (err as Error).message;
      log(`error: ${error}`);
    }
  }
  const known = { run, steps: opts.known?.steps ?? [], assertions: [], ...(opts.known?.workload ? { workload: opts.known.workload } : {}) };
  return summarize(recipe, file, { ...run, error }, known, Date.now() - started);
}
