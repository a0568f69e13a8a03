/**
 * gadget-run's command line:
 *   gadget-run run recipe.yaml [--out DIR] [--max-duration D] [--user NAME]
 *   gadget-run validate recipe.yaml
 *   gadget-run gadgets [--json]
 * Exit: 0 passed, 1 a step or an assertion failed, 2 bad command line or recipe, 130/143 interrupted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkSupport, gadgets } from '../steps/index.ts';
import type { GadgetDefinition } from '../steps/types.ts';
import { ArtifactError } from './artifacts.ts';
import { excerpt, parseDuration, parseSize } from './duration.ts';
import { DEFAULT_LIMITS, loadRecipeFile, RecipeError, type Limits } from './recipe.ts';
import { renderMarkdown, renderTerminal } from './report.ts';
import { appendStepSummary, fenceCommands, onGithubActions, problemAnnotations, runAnnotations } from './reporters/github.ts';
import { renderJunit } from './reporters/junit.ts';
import { writeTextAtomic } from './artifacts.ts';
import { runRecipe } from './run.ts';
import { chooseUser, WorkloadUserError } from './workload.ts';
import { exitCodeFor } from './summary.ts';
import { K8S_USAGE, k8sCommand } from '../k8s/commands.ts';

/** The gadget-run checkout or install: the folder of our package.json, from src/runner or from the bundle in build/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const ROOT = packageRoot();

const USAGE = `usage:
  gadget-run run <recipe.yaml> [--out DIR] [--max-duration 5s]   run a recipe; artifacts and DIR/summary.json
  gadget-run validate <recipe.yaml>...                           check recipes (no root needed)
  gadget-run gadgets [--json]                                    list the gadgets and whether this kernel can run them
${K8S_USAGE}options:
  --out DIR           where artifacts go (default: out/<recipe name>)
  --max-duration D    cap every step's duration (e.g. 2s), for trying a recipe out
  --objects DIR       compiled BPF objects (default: build/bpf in the gadget-run checkout)
  --limit-ring SIZE   most ring-buffer memory a recipe's steps may take together (default 256MiB)
  --limit-output SIZE most bytes of events a recipe's steps may write together (default 4GiB)
  --junit FILE        also write a JUnit XML report (a testcase per step and per assertion)
  --user NAME         run the workload as this user (name or uid; root only this way);
                      default: the recipe's user, else whoever ran sudo, else you
`;

class UsageError extends Error {}
/** A command-line value that cannot work here (a bad --out): exit 2, one line, no usage text. */
class OptionError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const k8s = k8sCommand(argv, ROOT);
  if (k8s) return await k8s;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o' },
        'max-duration': { type: 'string' },
        objects: { type: 'string' },
        'limit-ring': { type: 'string' },
        'limit-output': { type: 'string' },
        junit: { type: 'string' },
        user: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version + '\n');
    return 0;
  }
  const [command, ...files] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  try {
    switch (command) {
      case 'run':
        if (files.length !== 1) throw new UsageError('run takes one recipe file');
        return await run(files[0], values);
      case 'validate':
        if (!files.length) throw new UsageError('validate takes one or more recipe files');
        return validate(files, limitsOf(values));
      case 'gadgets':
        return listGadgets(values.json === true);
      default:
        throw new UsageError(`unknown command "${command}" (run, validate, gadgets)`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
    if (err instanceof OptionError) {
      process.stderr.write(`gadget-run: ${err.message}\n`);
      return 2;
    }
    if (err instanceof RecipeError) {
      reportRecipeError(err);
      return 2;
    }
    // a full disk or an unwritable --out: the message names the file, a stack trace adds nothing
    if (err instanceof ArtifactError) {
      process.stderr.write(`gadget-run: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function reportRecipeError(err: RecipeError): void {
  process.stderr.write(err.message + '\n');
  if (onGithubActions()) process.stdout.write(problemAnnotations(err.problems));
}

function usage(message: string): number {
  process.stderr.write(`gadget-run: ${message}\n${USAGE}`);
  return 2;
}

type LimitOptions = { 'limit-ring'?: string; 'limit-output'?: string };

function limitsOf(values: LimitOptions): Limits {
  const size = (name: keyof LimitOptions, fallback: number) => {
    const v = values[name];
    if (v === undefined) return fallback;
    try {
      return parseSize(v);
    } catch (err) {
      throw new UsageError(`--${name}: ${(err as Error).message}`);
    }
  };
  return { ringBytes: size('limit-ring', DEFAULT_LIMITS.ringBytes), outputBytes: size('limit-output', DEFAULT_LIMITS.outputBytes) };
}

/**
 * The output folder, made if missing and proven writable before anything
 * runs: a bad --out is a command-line error (exit 2) that says what to do.
 */
export function prepareOutDir(outDir: string): void {
  const fail = (why: string) => new OptionError(`--out ${excerpt(outDir, 200)}: ${why} — choose a folder you can write with --out DIR`);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && isSymlink(outDir)) throw fail('is a symbolic link to something that does not exist');
    if (code !== 'ENOENT') throw fail(describeErrno(err));
  }
  if (st && !st.isDirectory()) throw fail('exists and is not a folder');
  try {
    mkdirs(outDir);
    // root passes access(2) checks on a read-only mount: only a real file tells
    const probe = path.join(outDir, `.gadget-run-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
    fs.closeSync(fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
    fs.rmSync(probe);
  } catch (err) {
    throw fail(`cannot write there (${describeErrno(err)})`);
  }
}

/** mkdir -p that reports the real errno: Node's recursive mkdir says ENOENT on a read-only mount. */
function mkdirs(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) fs.mkdirSync(d);
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** "EROFS: read-only file system" from a Node fs error, without the call and path Node repeats. */
function describeErrno(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const m = /^(E[A-Z]+): ([^,]+)/.exec(e.message);
  return m ? `${m[1]}: ${m[2]}` : e.message;
}

async function run(file: string, values: { out?: string; 'max-duration'?: string; objects?: string; junit?: string; user?: string } & LimitOptions): Promise<number> {
  const loaded = loadRecipeFile(file, undefined, limitsOf(values));
  let user;
  try {
    user = chooseUser(values.user, loaded.recipe.user);
  } catch (err) {
    if (!(err instanceof WorkloadUserError)) throw err;
    throw new RecipeError([{ where: values.user !== undefined ? '--user' : file, path: values.user !== undefined ? '' : 'user', message: err.message }]);
  }
  let maxDurationMs: number | undefined;
  if (values['max-duration'] !== undefined) {
    try {
      maxDurationMs = parseDuration(values['max-duration']);
    } catch (err) {
      throw new UsageError(`--max-duration: ${(err as Error).message}`);
    }
  }
  const outDir = values.out ?? path.join('out', loaded.recipe.name);
  prepareOutDir(outDir);
  const summary = await runRecipe(loaded, {
    outDir,
    objectDir: values.objects ?? process.env.GADGET_RUN_OBJECTS ?? path.join(ROOT, 'build/bpf'),
    maxDurationMs,
    user,
  });
  const report = renderTerminal(summary, outDir);
  if (onGithubActions()) {
    // the report quotes workload text (args, paths): fenced, so none of it is a workflow command
    process.stdout.write(fenceCommands(report));
    process.stdout.write(runAnnotations(summary, loaded));
    appendStepSummary(renderMarkdown(summary));
  } else {
    process.stdout.write(report);
  }
  const junit = values.junit ?? (loaded.recipe.junit === undefined ? undefined : path.join(outDir, loaded.recipe.junit));
  if (junit !== undefined) await writeTextAtomic(junit, renderJunit(summary));
  return exitCodeFor(summary);
}

function validate(files: string[], limits: Limits): number {
  let failed = false;
  for (const file of files) {
    try {
      const { recipe } = loadRecipeFile(file, undefined, limits);
      process.stdout.write(`${file}: ok (${recipe.steps.length} step${recipe.steps.length === 1 ? '' : 's'}${recipe.assertions?.length ? `, ${recipe.assertions.length} assertion${recipe.assertions.length === 1 ? '' : 's'}` : ''})\n`);
    } catch (err) {
      if (!(err instanceof RecipeError)) throw err;
      reportRecipeError(err);
      failed = true;
    }
  }
  return failed ? 2 : 0;
}

function listGadgets(json: boolean): number {
  const rows = Object.values(gadgets as Record<string, GadgetDefinition>).map((def) => {
    const { why, missingOptional } = checkSupport(def);
    return {
      id: def.id,
      mode: def.mode,
      supported: !why,
      ...(why ? { reason: why } : {}),
      ...(missingOptional.length ? { missingOptional } : {}),
      description: def.description,
      fields: def.fields.map((f) => f.name),
      kernelFilters: Object.keys(def.kernelFilters),
      ...(def.params ? { params: def.params } : {}),
    };
  });
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const width = Math.max(...rows.map((r) => r.id.length));
  for (const r of rows) {
    process.stdout.write(`${r.id.padEnd(width)}  ${r.mode.padEnd(8)}  ${r.supported ? 'ok' : 'unsupported'}  ${r.description}\n`);
    if (r.reason) process.stdout.write(`${''.padEnd(width)}  ↳ ${r.reason}\n`);
    process.stdout.write(`${''.padEnd(width)}  fields: ${r.fields.join(', ')}\n`);
    if (r.kernelFilters.length) process.stdout.write(`${''.padEnd(width)}  filtered in the kernel (==): ${r.kernelFilters.join(', ')}\n`);
    const params = Object.entries((r.params?.properties ?? {}) as Record<string, { type?: string; description?: string }>);
    for (const [name, p] of params) process.stdout.write(`${''.padEnd(width)}  params.${name} (${p.type}): ${p.description ?? ''}\n`);
    if (r.missingOptional) process.stdout.write(`${''.padEnd(width)}  without: ${r.missingOptional.join(', ')} (not on this kernel)\n`);
  }
  return 0;
}
