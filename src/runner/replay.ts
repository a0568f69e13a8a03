/**
 * `gadget-run replay RECIPE --from DIR`: evaluate a recipe again over what an earlier run
 * captured (DIR/raw), with no root and no kernel: transforms, outputs, baselines and
 * assertions are recomputed, and the verdict is the one `run` would have given. Editing
 * a transform or an assertion becomes a second-long loop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RAW_DIR, readRunMeta } from './capture.ts';
import { judge } from './judge.ts';
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
}

export async function replayRecipe(loaded: LoadedRecipe, from: string, opts: ReplayOptions = {}): Promise<Summary> {
  const started = Date.now();
  const run = fs.existsSync(path.join(from, RAW_DIR)) ? readRunMeta(from) : undefined;
  if (!run) throw new ReplayError(`--from ${from}: no captured run there (${RAW_DIR}/run.json is missing) — give the --out folder of an earlier \`gadget-run run\``);
  return judge(loaded, from, run, {
    outDir: opts.outDir ?? from,
    started,
    ...(opts.updateBaseline ? { updateBaseline: true } : {}),
    ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    extra: { fields: { replayed_from: from } },
  });
}
