/**
 * The errors callers of gadget-run tell apart by class, because each asks for a different
 * way out: a bad recipe (fix the file at the place named), a --from or --out that cannot
 * work, an unknown gadget. The library API (src/api) adds could-not-trace and interrupted.
 * A light module (no parser, no libbpf), so the CLI and the API entry load it at start.
 */
import { excerpt } from '../steps/duration.ts';

/** Problems shown at most, so that a recipe of garbage does not flood the terminal. */
const MAX_PROBLEMS = 20;

/** Where a problem is: a place in a recipe file, or what a recipe built in memory came from (an option). */
export interface Place {
  /** `file:line:col` for a place in a file; else the option or object, e.g. `--filter` */
  where: string;
  /** the recipe file, when the problem is in one */
  file?: string;
  /** 1-based line and column in `file` */
  line?: number;
  col?: number;
}

/** One problem with a recipe: where, the JSON path (e.g. `steps[1].filter`) and what is wrong. */
export interface Problem extends Place {
  path: string;
  message: string;
}

/** A recipe that cannot run: every problem found, each with its place and JSON path. Nothing ran. */
export class RecipeError extends Error {
  constructor(readonly problems: Problem[]) {
    const shown = problems.slice(0, MAX_PROBLEMS).map((p) => `${p.where} ${p.path ? `${p.path}: ` : ''}${visible(excerpt(p.message, 300))}`);
    if (problems.length > MAX_PROBLEMS) shown.push(`… and ${problems.length - MAX_PROBLEMS} more problems`);
    super(shown.join('\n'));
    this.name = 'RecipeError';
  }
}

/** Control characters in a message as escapes: a recipe's text must not move the terminal's cursor. */
export function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** replay's --from does not hold a captured run. */
export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayError';
  }
}

/** The output folder cannot be used (not a folder, not writable); checked before anything runs. */
export class OutDirError extends Error {
  constructor(readonly dir: string, readonly why: string) {
    super(`--out ${dir.length > 200 ? dir.slice(0, 200) + '…' : dir}: ${why} — choose a folder you can write with --out DIR`);
    this.name = 'OutDirError';
  }
}

/** No gadget has this id. */
export class UnknownGadgetError extends Error {
  constructor(readonly id: string, readonly known: string[]) {
    super(`unknown gadget "${excerpt(id)}" (known: ${known.join(', ')})`);
    this.name = 'UnknownGadgetError';
  }
}

/** An option given to gadget-run (a library call's or the command line's) that cannot work, named. */
export class OptionError extends Error {
  constructor(readonly option: string, readonly reason: string) {
    super(`${option}: ${reason}`);
    this.name = 'OptionError';
  }
}
