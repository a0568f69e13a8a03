/**
 * What a run does once judged: export its events (`export:`, otlp.ts), then run the actions
 * its verdict calls for (actions.ts), and write summary.json and report.md again with their
 * ends. Neither changes the verdict. report.html keeps the verdict as judged (written before).
 */
import { artifactPath, writeTextAtomic } from './artifacts.ts';
import { hooksFor, runActions, type ActionContext } from './actions.ts';
import { exportOtlp } from './otlp.ts';
import type { Recipe } from './recipe.ts';
import { renderMarkdown } from './report.ts';
import { exitCodeFor, type Summary } from './summary.ts';

export interface AfterVerdictOptions {
  /** the output folder, where summary.json and report.md are written again */
  outDir: string;
  /** the folder whose raw/ is exported: a replay's --from; default outDir */
  rawFrom?: string;
  /** scripts are relative to its folder */
  recipeDir: string;
  /** who runs the actions, or why nobody may; absent: no actions */
  user?: ActionContext['user'];
  /** run the recipe's `export:` */
  exportEvents: boolean;
  log: (line: string) => void;
  /** the run's redaction, for what is written again */
  redact: (v: unknown) => unknown;
  /** what report.md says after the summary's own sections (a cluster run's nodes) */
  markdown?: (s: Summary) => string;
}

/** Returns the summary as written. */
export async function afterVerdict(recipe: Recipe, judged: Summary, opts: AfterVerdictOptions): Promise<Summary> {
  const acts = opts.user !== undefined && hooksFor(judged.status).some((h) => recipe[h]?.length);
  const otlp = opts.exportEvents ? recipe.export?.otlp : undefined;
  if (!acts && !otlp) return judged;
  let summary = judged;
  if (otlp) summary = { ...summary, export: { otlp: await exportOtlp(otlp, opts.rawFrom ?? opts.outDir, summary, opts.log) } };
  if (acts) {
    // the actions read summary.json: it holds the export's figures first
    if (summary !== judged) await write(summary, opts);
    const actions = await runActions(recipe, { outDir: opts.outDir, recipeDir: opts.recipeDir, recipe: recipe.name, status: summary.status, exitCode: exitCodeFor(summary), user: opts.user!, log: opts.log });
    summary = { ...summary, actions };
  }
  return write(summary, opts);
}

async function write(summary: Summary, opts: AfterVerdictOptions): Promise<Summary> {
  const redacted = opts.redact(summary) as Summary;
  await writeTextAtomic(artifactPath(opts.outDir, 'summary.json'), JSON.stringify(redacted, null, 2) + '\n');
  await writeTextAtomic(artifactPath(opts.outDir, 'report.md'), renderMarkdown(redacted) + (opts.markdown?.(redacted) ?? ''));
  return redacted;
}
