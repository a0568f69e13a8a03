/**
 * Baseline diff: a step's keys (a JSONata expression per record of its result) against
 * a sorted JSON array committed next to the recipe. New keys fail the run; removed ones
 * are reported; only --update-baseline writes the file. The file is named relative to the
 * recipe's folder and must stay inside it, symlinks included: a recipe from a pull request
 * must not read or overwrite anything else.
 */
import fs from 'node:fs';
import { writeTextAtomic } from './artifacts.ts';
import { checkRecipeRelative, resolveInRecipeDir } from './recipe-dir.ts';

/** What is wrong with a baseline path on its face (validate), or undefined. */
export function checkBaselinePath(file: string): string | undefined {
  const why = checkRecipeRelative(file, 'baseline file', 'execs.baseline.json');
  if (why) return why;
  if (!file.endsWith('.json') && !file.endsWith('.folded')) return `baseline file ${JSON.stringify(file)} must end in .json (a JSON array of keys) or .folded (a profile's folded stacks)`;
  return undefined;
}

export class BaselineError extends Error {}

/** The baseline's path on disk, after proving that it (and every folder to it) resolves inside `recipeDir`. */
export function resolveBaseline(recipeDir: string, file: string): string {
  const why = checkBaselinePath(file);
  if (why) throw new BaselineError(why);
  const resolved = resolveInRecipeDir(recipeDir, file, 'baseline file');
  if ('error' in resolved) throw new BaselineError(resolved.error);
  return resolved.path;
}

/** The keys in the file; a missing file is an empty baseline (every key is new). */
export function readBaseline(file: string): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BaselineError(`cannot read the baseline ${file}: ${(err as Error).message}`);
  }
  let keys: unknown;
  try {
    keys = JSON.parse(text);
  } catch (err) {
    throw new BaselineError(`baseline ${file} is not JSON (${(err as Error).message}); write it with --update-baseline`);
  }
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new BaselineError(`baseline ${file} must be a JSON array of strings; write it with --update-baseline`);
  return keys;
}

export function diffKeys(keys: readonly string[], baseline: readonly string[]): { added: string[]; removed: string[] } {
  const have = new Set(keys);
  const known = new Set(baseline);
  return { added: keys.filter((k) => !known.has(k)), removed: baseline.filter((k) => !have.has(k)).sort() };
}

/** Sorted, one key a line, so that a pull request's diff shows each new key as one added line. */
export function baselineText(keys: readonly string[]): string {
  return JSON.stringify([...new Set(keys)].sort(), null, 2) + '\n';
}

export function writeBaseline(file: string, keys: readonly string[]): Promise<void> {
  return writeTextAtomic(file, baselineText(keys));
}
