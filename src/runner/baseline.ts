/**
 * Baseline diff: a step's keys (a JSONata expression per record of its result) against
 * a sorted JSON array committed next to the recipe. New keys fail the run; removed ones
 * are reported; only --update-baseline writes the file. The file is named relative to the
 * recipe's folder and must stay inside it, symlinks included: a recipe from a pull request
 * must not read or overwrite anything else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeTextAtomic } from './artifacts.ts';

/** What is wrong with a baseline path on its face (validate), or undefined. */
export function checkBaselinePath(file: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\\]/.test(file)) return `baseline file ${JSON.stringify(file)} holds a control character or a backslash`;
  if (path.isAbsolute(file)) return `baseline file ${JSON.stringify(file)} is absolute: name it relative to the recipe's folder (e.g. execs.baseline.json)`;
  if (file.split('/').includes('..')) return `baseline file ${JSON.stringify(file)} climbs out with "..": it must be inside the recipe's folder`;
  if (!file.endsWith('.json') && !file.endsWith('.folded')) return `baseline file ${JSON.stringify(file)} must end in .json (a JSON array of keys) or .folded (a profile's folded stacks)`;
  return undefined;
}

export class BaselineError extends Error {}

/** The baseline's path on disk, after proving that it (and every folder to it) resolves inside `recipeDir`. */
export function resolveBaseline(recipeDir: string, file: string): string {
  const why = checkBaselinePath(file);
  if (why) throw new BaselineError(why);
  const root = fs.realpathSync(recipeDir);
  const target = path.resolve(root, file);
  // the deepest part that exists, resolved: a symlinked folder or file must not lead out
  let existing = target;
  while (!fs.existsSync(existing) && existing !== root) existing = path.dirname(existing);
  const real = fs.realpathSync(existing);
  const inside = (p: string) => p === root || p.startsWith(root + path.sep);
  if (!inside(real) || (fs.lstatSync(target, { throwIfNoEntry: false })?.isSymbolicLink() && !inside(fs.realpathSync(target)))) {
    throw new BaselineError(`baseline file ${JSON.stringify(file)} resolves to ${real}, outside the recipe's folder ${root}`);
  }
  if (!inside(path.resolve(real, path.relative(existing, target)))) throw new BaselineError(`baseline file ${JSON.stringify(file)} leaves the recipe's folder`);
  return target;
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
