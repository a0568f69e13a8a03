/**
 * `gadget-run replay RECIPE --from DIR`: evaluate a recipe again over what an earlier run
 * captured (DIR/raw), with no root and no kernel: transforms, outputs, baselines and
 * assertions are recomputed, and the verdict is the one `run` would have given. Editing
 * a transform or an assertion becomes a second-long loop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { artifactPath, writeTextAtomic } from './artifacts.ts';
import { RAW_DIR, readRunMeta } from './capture.ts';
import { evaluate } from './evaluate.ts';
import type { LoadedRecipe } from './recipe.ts';
import { compileRedactor } from './redact.ts';
import { renderMarkdown } from './report.ts';
import type { Summary } from './summary.ts';
import { summarize } from './verdict.ts';

/** --from does not hold a captured run (the CLI knows it by name: exit 2). */
export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayError';
  }
}

export interface ReplayOptions {
  /** where outputs, summary.json and report.md go; default: the --from folder */
  outDir?: string;
  updateBaseline?: boolean;
  log?: (line: string) => void;
}

export async function replayRecipe(loaded: LoadedRecipe, from: string, opts: ReplayOptions = {}): Promise<Summary> {
  const started = Date.now();
  const run = fs.existsSync(path.join(from, RAW_DIR)) ? readRunMeta(from) : undefined;
  if (!run) throw new ReplayError(`--from ${from}: no captured run there (${RAW_DIR}/run.json is missing) — give the --out folder of an earlier \`gadget-run run\``);
  const outDir = opts.outDir ?? from;
  const evaluation = await evaluate(loaded.recipe, from, { log: opts.log, outDir, recipeDir: path.dirname(loaded.file), updateBaseline: opts.updateBaseline });
  // the record is redacted already; the recipe's patterns may have grown since
  const summary = compileRedactor(loaded.recipe.redact).value({ ...summarize(loaded.recipe, loaded.file, run, evaluation, Date.now() - started), replayed_from: from }) as Summary;
  await writeTextAtomic(artifactPath(outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  await writeTextAtomic(artifactPath(outDir, 'report.md'), renderMarkdown(summary));
  return summary;
}
