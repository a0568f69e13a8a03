/**
 * Files a recipe names next to itself (a baseline, a seccomp profile): named
 * relative to the recipe's folder and kept inside it, symlinks included. A
 * recipe from a pull request runs as root and must not read or overwrite
 * anything else.
 */
import fs from 'node:fs';
import path from 'node:path';

/** What is wrong with such a path on its face (validate), or undefined; `what` names it ("baseline file"). */
export function checkRecipeRelative(file: string, what: string, example: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\\]/.test(file)) return `${what} ${JSON.stringify(file)} holds a control character or a backslash`;
  if (path.isAbsolute(file)) return `${what} ${JSON.stringify(file)} is absolute: name it relative to the recipe's folder (e.g. ${example})`;
  if (file.split('/').includes('..')) return `${what} ${JSON.stringify(file)} climbs out with "..": it must be inside the recipe's folder`;
  return undefined;
}

/**
 * The file's path on disk, after proving that it (and every folder to it)
 * resolves inside `recipeDir`; else a message saying where it leads.
 */
export function resolveInRecipeDir(recipeDir: string, file: string, what: string): { path: string } | { error: string } {
  const root = fs.realpathSync(recipeDir);
  const target = path.resolve(root, file);
  // the deepest part that exists, resolved: a symlinked folder or file must not lead out
  let existing = target;
  while (!fs.existsSync(existing) && existing !== root) existing = path.dirname(existing);
  const real = fs.realpathSync(existing);
  const inside = (p: string) => p === root || p.startsWith(root + path.sep);
  if (!inside(real) || (fs.lstatSync(target, { throwIfNoEntry: false })?.isSymbolicLink() && !inside(fs.realpathSync(target)))) {
    return { error: `${what} ${JSON.stringify(file)} resolves to ${real}, outside the recipe's folder ${root}` };
  }
  if (!inside(path.resolve(real, path.relative(existing, target)))) return { error: `${what} ${JSON.stringify(file)} leaves the recipe's folder` };
  return { path: target };
}
