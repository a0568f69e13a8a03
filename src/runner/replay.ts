/**
 * `gadget-run replay RECIPE --from DIR`: evaluate a recipe again over what an earlier run
 * captured (DIR/raw), with no root and no kernel: transforms, outputs, baselines and
 * assertions are recomputed, and the verdict is the one `run` would have given. Editing
 * a transform or an assertion becomes a second-long loop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RAW_DIR, readRunMeta } from './capture.ts';
import { recipeDirOf } from './actions.ts';
import { afterVerdict } from './after-verdict.ts';
import { judge } from './judge.ts';
import { compileRedactor } from './redact.ts';
import type { LoadedRecipe } from './recipe.ts';
import type { Summary } from './summary.ts';

import { ReplayError } from './errors.ts';

export { ReplayError };

export interface ReplayOptions {
  /** where outputs, summary.json and report.md go; default: the --from folder */
  outDir?: string;
  updateBaseline?: boolean;
  /** --junit FILE; default: the recipe's junit inside outDir */
  junit?: string;
  log?: (line: string) => void;
  /** aborting stops the evaluation running; the summary says interrupted */
  signal?: AbortSignal;
  /** send the captured events where the recipe's `export:` says, after the verdict, as run does; default false */
  exportEvents?: boolean;
}

export async function replayRecipe(loaded: LoadedRecipe, from: string, opts: ReplayOptions = {}): Promise<Summary> {
  const started = Date.now();
  const run = fs.existsSync(path.join(from, RAW_DIR)) ? readRunMeta(from) : undefined;
  if (!run) throw new ReplayError(`--from ${from}: no captured run there (${RAW_DIR}/run.json is missing) — give the --out folder of an earlier \`gadget-run run\``);
  const outDir = opts.outDir ?? from;
  const redactor = compileRedactor(loaded.recipe.redact);
  const log = opts.log ?? (() => {});
  const judged = await judge(loaded, from, run, {
    outDir,
    redactor,
    started,
    ...(opts.updateBaseline ? { updateBaseline: true } : {}),
    ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    extra: { fields: { replayed_from: from } },
  });
  // the same export as the run's, from the events the run captured (never actions: a replay is not the incident)
  return afterVerdict(loaded.recipe, judged, { outDir, rawFrom: from, exportEvents: opts.exportEvents ?? false, recipeDir: recipeDirOf(loaded.file), log, redact: (v) => redactor.value(v) });
}
