// How gadget-run starts, as the CLI (bin/gadget-run) and as a library (index.mjs): from a
// bundle in build/ when it is newer than every source file (a fast start), else straight
// from the TypeScript through tsx (a checkout being worked on runs what it holds).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The newest mtime of any file under `dir`. */
export function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** `file` exists and is newer than src/ and the recipe schema (what a bundle is built from). */
export function isFresh(file) {
  try {
    const built = fs.statSync(file).mtimeMs;
    return built >= newestSource(path.join(ROOT, 'src')) && built >= fs.statSync(path.join(ROOT, 'schemas', 'recipe.schema.json')).mtimeMs;
  } catch {
    return false;
  }
}

/** Import build/<bundle> when fresh, else <source> (relative to the package) through tsx. */
export async function importFresh(bundle, source) {
  const built = path.join(ROOT, 'build', bundle);
  if (isFresh(built)) return import(pathToFileURL(built).href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(pathToFileURL(path.join(ROOT, source)).href);
}
