/**
 * gadget-run's command line. Commands are entries of COMMANDS (one entry per
 * subcommand: its help, its options from OPTIONS, and its implementation);
 * `gadget-run CATEGORY/NAME …` is the one-liner (a one-step recipe built in
 * memory). Exit: 0 passed; 1 the verdict failed (an assertion, the workload's exit
 * code, lost events, a failed step, a new baseline key); 2 bad command line, recipe,
 * --out or --from; 3 could not trace here (not root, no BTF, a hook missing, load or
 * attach refused); 130/143 interrupted.
 *
 * Start-up is on the critical path of every run (bench/startup.ts): this file
 * imports only node built-ins and type declarations at the top; each command
 * loads what it needs with import() when it runs, so `--version` or `help`
 * never parse the recipe, JSONata, ajv or libbpf code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { mark } from '../timing.ts';
import type { LoadedRecipe, LoadOptions, Limits, Problem } from './recipe.ts';
import type { OutputFormat } from './progress.ts';
import type { Summary } from './summary.ts';
import type { GadgetDefinition } from '../steps/types.ts';

/** The gadget-run checkout or install: the folder of our package.json, from src/runner or from the bundle in build/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const ROOT = packageRoot();

export function version(): string {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
}

/** A bad command line: exit 2 with the command's usage. */
class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}
/** A command-line value that cannot work here (a bad --out): exit 2, one line, no usage text. */
class OptionError extends Error {}

// ---------------------------------------------------------------------------
// Options: one table; each command lists the ones it takes.

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** placeholder in the help, for string options */
  value?: string;
  help: string;
}

const OPTIONS = {
  out: { type: 'string', short: 'O', value: 'DIR', help: 'where artifacts go (run: default out/<recipe name>; a one-liner writes none without it)' },
  output: { type: 'string', short: 'o', value: 'FORMAT', help: 'also print the events on stdout as they come: json (NDJSON, each with its step) or columns (a table)' },
  set: { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'set a recipe input (repeatable); the recipe declares them under inputs:' },
  'max-duration': { type: 'string', value: 'D', help: "cap every step's duration (e.g. 2s), for trying a recipe out" },
  objects: { type: 'string', value: 'DIR', help: 'compiled BPF objects (default: build/bpf of gadget-run, or $GADGET_RUN_OBJECTS)' },
  'limit-ring': { type: 'string', value: 'SIZE', help: "most ring-buffer memory a recipe's steps may take together (default 256MiB)" },
  'limit-output': { type: 'string', value: 'SIZE', help: "most bytes of events a recipe's steps may write together (default 4GiB)" },
  junit: { type: 'string', value: 'FILE', help: 'also write a JUnit XML report (a testcase per step and per assertion)' },
  from: { type: 'string', value: 'DIR', help: 'the --out folder of an earlier run, whose raw/ record replay evaluates' },
  'update-baseline': { type: 'boolean', help: "write each step's baseline file from this run's keys instead of failing on new ones" },
  user: { type: 'string', value: 'NAME', help: "run the workload as this user (name or uid; root only this way); default: the recipe's user, else whoever ran sudo, else you" },
  json: { type: 'boolean', help: 'print JSON instead of text' },
  filter: { type: 'string', short: 'F', value: 'FILTER', help: 'Inspektor Gadget filter: field==value, !=, >=, >, <=, <, ~regex; comma = AND' },
  duration: { type: 'string', short: 'd', value: 'D', help: 'how long to trace (e.g. 5s, 1m30s); default: until the command ends, or until Ctrl-C' },
  param: { type: 'string', multiple: true, value: 'NAME=VALUE', help: "set a gadget parameter (repeatable; `gadget-run gadgets ID` lists them)" },
  buffer: { type: 'string', value: 'SIZE', help: 'ring buffer size, a power of two (default 16MiB)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} satisfies Record<string, OptionSpec>;

type OptionName = keyof typeof OPTIONS;
type Values = { [K in OptionName]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** What a command receives: its options, its positionals, and the words after `--`. */
export interface Invocation {
  values: Values;
  positionals: string[];
  /** after `--`: the workload's argv, for commands that take one */
  argv?: string[];
}

// ---------------------------------------------------------------------------
// Commands. Adding one is one entry here (plus its OPTIONS, if new).

interface Command {
  /** one line for `gadget-run help` */
  summary: string;
  /** usage lines, after "gadget-run " */
  usage: string[];
  /** more text for `gadget-run help CMD` */
  details?: string;
  options: OptionName[];
  /** takes `-- CMD…` */
  argv?: boolean;
  run(inv: Invocation): Promise<number>;
}

const RUN_OPTIONS: OptionName[] = ['out', 'output', 'set', 'max-duration', 'objects', 'limit-ring', 'limit-output', 'junit', 'user', 'update-baseline'];
const EXIT_CODES = 'Exit: 0 passed, 1 a verdict failed, 2 bad command line or recipe, 3 could not trace here, 130/143 interrupted.';

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run a recipe: trace, write artifacts and DIR/summary.json, check assertions',
    usage: ['run <recipe.yaml | -> [--out DIR] [-o json|columns] [--set NAME=VALUE]… [-- CMD [ARG…]]'],
    details: `The recipe comes from a file, or from stdin with "-".
-- CMD [ARG…] gives the workload on the command line instead of the recipe's run:
it is executed as it is (no shell), in the workload's own cgroup.
${EXIT_CODES}`,
    options: RUN_OPTIONS,
    argv: true,
    run: runCommand,
  },
  replay: {
    summary: 'evaluate a recipe again over the raw/ record of an earlier run (no root, no kernel)',
    usage: ['replay <recipe.yaml | -> --from DIR [--out DIR2]'],
    details: `Transforms, outputs, baselines and assertions are computed again from DIR/raw, and the
verdict is the one run would give: edit a transform or an assertion, see it at once.
--out defaults to DIR itself. ${EXIT_CODES}`,
    options: ['from', 'out', 'set', 'limit-ring', 'limit-output', 'junit', 'update-baseline'],
    run: replayCommand,
  },
  validate: {
    summary: 'check recipes without running them (no root needed)',
    usage: ['validate <recipe.yaml | ->… [--set NAME=VALUE]…'],
    options: ['set', 'limit-ring', 'limit-output'],
    run: validateCommand,
  },
  gadgets: {
    summary: 'list the gadgets and whether this kernel can run them, or show one',
    usage: ['gadgets [ID] [--json]'],
    details: 'With an ID (e.g. trace/open): its fields with types and descriptions, the fields filtered in the kernel, its params and its hooks.',
    options: ['json'],
    run: gadgetsCommand,
  },
  help: {
    summary: 'show help for gadget-run or for one command',
    usage: ['help [COMMAND]'],
    options: [],
    run: async (inv) => help(inv.positionals[0]),
  },
  version: {
    summary: 'print the version',
    usage: ['version'],
    options: [],
    run: async () => {
      process.stdout.write(version() + '\n');
      return 0;
    },
  },
};

/** The one-liner: `gadget-run trace/exec [options] [-- CMD…]`. */
const ONE_LINER: Command = {
  summary: 'trace with one gadget, without a recipe file; events go to stdout',
  usage: ['<category/name> [--filter F] [--duration D] [--param NAME=VALUE]… [-o json|columns] [--out DIR] [-- CMD [ARG…]]'],
  details: `Events print as a table on a terminal and as NDJSON otherwise (-o chooses).
Artifacts (NDJSON, summary.json, report.md) are written only with --out.
Examples:
  gadget-run trace/exec -- make test
  gadget-run trace/open --filter comm==cat --duration 5s -o json`,
  options: ['filter', 'duration', 'param', 'buffer', 'output', 'out', 'max-duration', 'objects', 'junit', 'user'],
  argv: true,
  run: oneLinerCommand,
};

const GADGET_ID = /^[a-z][a-z0-9_-]*\/[a-z][a-z0-9_-]*$/;

// ---------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  let stdoutGone = false;
  // `gadget-run gadgets | head -1`: the reader left; that is not an error
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (stdoutGone) return;
    stdoutGone = true;
    onStdoutGone();
  });
  const [first, ...rest] = argv;
  // the cluster commands parse their own options (src/k8s/commands.ts), loaded only when asked for
  if (first === 'deploy' || first === 'undeploy' || first === 'agent' || (first === 'run' && rest.includes('--cluster'))) {
    const { k8sCommand } = await import('../k8s/commands.ts');
    return await k8sCommand(argv, ROOT)!;
  }
  if (first === undefined) return usage('no command given');
  if (first === '--version' || first === '-V') return COMMANDS.version.run({ values: {}, positionals: [] });
  if (first === '--help' || first === '-h') return help();
  const name = Object.hasOwn(COMMANDS, first) ? first : GADGET_ID.test(first) ? first : undefined;
  if (!name) {
    if (first.startsWith('-')) return usage(`${first}: give the command first (gadget-run COMMAND [options])`);
    return usage(`unknown command "${first}" (commands: ${Object.keys(COMMANDS).join(', ')}; or a gadget id like trace/exec)`);
  }
  const command = COMMANDS[name] ?? ONE_LINER;
  try {
    const inv = parse(command, name, rest);
    if (inv.values.help) return help(name);
    if (!command.argv && inv.argv) throw new UsageError(`${name} takes no command after --`, name);
    if (command === ONE_LINER) inv.positionals.unshift(name);
    return await command.run(inv);
  } catch (err) {
    return await report(err);
  }
}

/** What an uncaught error from a command means for the exit code. */
async function report(err: unknown): Promise<number> {
  if (err instanceof UsageError) return usage(err.message, err.command);
  // a --from with no captured run in it is a bad command line too (replay.ts names it, not imported here at start)
  if (err instanceof OptionError || (err as Error | undefined)?.name === 'ReplayError') {
    process.stderr.write(`gadget-run: ${(err as Error).message}\n`);
    return 2;
  }
  const name = (err as Error | undefined)?.name;
  if (name === 'RecipeError') {
    await reportRecipeError(err as Error & { problems: Problem[] });
    return 2;
  }
  // a full disk or an unwritable --out: the message names the file, a stack trace adds nothing
  if (name === 'ArtifactError') {
    process.stderr.write(`gadget-run: ${(err as Error).message}\n`);
    return 1;
  }
  throw err;
}

/** What to do when stdout's reader goes away: quietly end; a run stops as on Ctrl-C (nothing stays attached). */
let onStdoutGone = (): void => {
  process.exitCode = 0;
  process.exit(0);
};

function parse(command: Command, name: string, args: string[]): Invocation {
  const options: NonNullable<ParseArgsConfig['options']> = { help: OPTIONS.help };
  for (const o of command.options) options[o] = OPTIONS[o];
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''), name);
  }
  const terminator = parsed.tokens.find((t) => t.kind === 'option-terminator');
  const values = parsed.values as Values;
  if (terminator) {
    const after = args.slice(terminator.index + 1);
    const positionals = parsed.positionals.slice(0, parsed.positionals.length - after.length);
    if (!after.length) throw new UsageError('-- must be followed by a command', name);
    return { values, positionals, argv: after };
  }
  return { values, positionals: parsed.positionals };
}

/** `run <recipe.yaml | ->` from `run <recipe.yaml | -> [--out DIR] …`: the usage up to its first option */
const synopsis = (c: Command) => c.usage[0].replace(/ \[-.*$/, '');

function usageText(): string {
  const rows = [...Object.values(COMMANDS), ONE_LINER].map((c) => [synopsis(c), c.summary]);
  const width = Math.max(...rows.map(([u]) => u.length));
  return `usage: gadget-run COMMAND [options]\n\ncommands:\n${rows.map(([u, s]) => `  ${u.padEnd(width)}  ${s}\n`).join('')}
cluster commands (Kubernetes; docs/kubernetes.md):
  run <recipe.yaml> --cluster [--node N]… [-n NS] [-p POD] [-c CONTAINER] [-l k=v]…   run it on every (or each --node) node
  deploy [--apply] [--image I] [--pull-policy P] [--caps BPF,PERFMON,…]                 print (or apply) the manifests
  undeploy [--wait]                                                                     remove everything deploy created
  agent                                                                                 the per-node agent the DaemonSet runs

gadget-run help COMMAND (or COMMAND --help) shows a command's options; gadget-run --version the version.
examples:
  gadget-run run recipes/quickstart.yaml --out out/quickstart
  gadget-run trace/exec -- make test
  gadget-run gadgets trace/open
`;
}

function commandHelp(name: string, c: Command): string {
  const opts = [...c.options, 'help' as const].map((o) => {
    const spec: OptionSpec = OPTIONS[o];
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${o}${spec.value ? ` ${spec.value}` : ''}`;
    return [flag, spec.help];
  });
  const width = Math.max(...opts.map(([f]) => f.length));
  return `usage:\n${c.usage.map((u) => `  gadget-run ${u}\n`).join('')}\n${c.summary}\n${c.details ? `\n${c.details}\n` : ''}\noptions:\n${opts.map(([f, h]) => `  ${f.padEnd(width)}  ${h}\n`).join('')}`;
}

function help(name?: string): number {
  if (name === undefined) {
    process.stdout.write(usageText());
    return 0;
  }
  const c = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : GADGET_ID.test(name) ? ONE_LINER : undefined;
  if (!c) return usage(`no help for "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
  process.stdout.write(commandHelp(name, c));
  return 0;
}

function usage(message: string, command?: string): number {
  const c = command === undefined ? undefined : COMMANDS[command] ?? ONE_LINER;
  const text = c ? `usage:\n${c.usage.map((u) => `  gadget-run ${u}\n`).join('')}(gadget-run help ${Object.hasOwn(COMMANDS, command!) ? command : 'CATEGORY/NAME'} for the options)\n` : usageText();
  process.stderr.write(`gadget-run: ${message}\n${text}`);
  return 2;
}

async function reportRecipeError(err: Error & { problems: Problem[] }): Promise<void> {
  process.stderr.write(err.message + '\n');
  const github = await import('./reporters/github.ts');
  if (github.onGithubActions()) process.stdout.write(github.problemAnnotations(err.problems));
}

// ---------------------------------------------------------------------------
// Option values

async function limitsOf(values: Values): Promise<Limits> {
  const { parseSize } = await import('./duration.ts');
  const { DEFAULT_LIMITS } = await import('./recipe.ts');
  const size = (name: 'limit-ring' | 'limit-output', fallback: number) => {
    const v = values[name];
    if (v === undefined) return fallback;
    try {
      return parseSize(v);
    } catch (err) {
      throw new OptionError(`--${name}: ${(err as Error).message}`);
    }
  };
  return { ringBytes: size('limit-ring', DEFAULT_LIMITS.ringBytes), outputBytes: size('limit-output', DEFAULT_LIMITS.outputBytes) };
}

async function durationOf(option: string, value: string | undefined): Promise<number | undefined> {
  if (value === undefined) return undefined;
  const { parseDuration } = await import('./duration.ts');
  try {
    return parseDuration(value);
  } catch (err) {
    throw new OptionError(`--${option}: ${(err as Error).message}`);
  }
}

/** -o is the output format, as in ig and kubectl; the folder is --out (-O). */
function formatOf(value: string | undefined): OutputFormat | undefined {
  if (value === undefined) return undefined;
  if (value === 'json' || value === 'columns') return value;
  throw new OptionError(`-o ${JSON.stringify(value)}: -o is the output format (json or columns), as in ig and kubectl; the output folder is --out DIR (-O DIR)`);
}

async function setsOf(values: Values): Promise<Record<string, string>> {
  const { parseSets } = await import('./inputs.ts');
  try {
    return parseSets(values.set ?? []);
  } catch (err) {
    throw new OptionError((err as Error).message);
  }
}

/**
 * The output folder, made if missing and proven writable before anything
 * runs: a bad --out is a command-line error (exit 2) that says what to do.
 */
export function prepareOutDir(outDir: string): void {
  const fail = (why: string) => new OptionError(`--out ${outDir.length > 200 ? outDir.slice(0, 200) + '…' : outDir}: ${why} — choose a folder you can write with --out DIR`);
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

// ---------------------------------------------------------------------------
// run, and the one-liner

async function runCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length !== 1) throw new UsageError('run takes one recipe file (or - to read it from stdin)', 'run');
  const format = formatOf(inv.values.output);
  const { loadRecipeFile } = await import('./recipe.ts');
  mark('recipe module imported');
  const loaded = loadRecipeFile(inv.positionals[0], undefined, await limitsOf(inv.values), { inputs: await setsOf(inv.values), argv: inv.argv });
  mark('recipe validated');
  return execute(loaded, inv.values, { format, outDir: inv.values.out ?? path.join('out', loaded.recipe.name) });
}

async function oneLinerCommand(inv: Invocation): Promise<number> {
  const [id] = inv.positionals;
  if (inv.positionals.length > 1) throw new UsageError(`unexpected ${JSON.stringify(inv.positionals[1])}: give the command to trace after --`, id);
  const { findGadget, gadgets } = await import('../steps/index.ts');
  const def = findGadget(id);
  if (!def) throw new OptionError(`unknown gadget "${id}" (known: ${Object.keys(gadgets).join(', ')})`);
  const step: Record<string, unknown> = { id: id.split('/')[1].replace(/[^A-Za-z0-9_]/g, '_'), gadget: id };
  const fromOption: Record<string, string> = { [`steps[0].gadget`]: id };
  if (inv.values.filter !== undefined) step.filter = inv.values.filter;
  if (inv.values.duration !== undefined) step.duration = inv.values.duration;
  if (inv.values.buffer !== undefined) step.buffer = inv.values.buffer;
  if (inv.values.param?.length) {
    const { parseSets } = await import('./inputs.ts');
    const params: Record<string, unknown> = {};
    try {
      for (const [k, v] of Object.entries(parseSets(inv.values.param))) params[k] = scalar(v);
    } catch (err) {
      throw new OptionError((err as Error).message.replace('--set', '--param'));
    }
    step.params = params;
  }
  // no duration and no command: until Ctrl-C (the longest duration there is)
  if (step.duration === undefined && !inv.argv && def.mode === 'stream') step.duration = '24d';
  const recipe = { apiVersion: 'gadget-run/v1', name: id.replace('/', '-'), steps: [step] };
  const { parseRecipe, RecipeError } = await import('./recipe.ts');
  let loaded: LoadedRecipe;
  try {
    // JSON is YAML: the recipe goes through the same checks as a file
    loaded = parseRecipe(JSON.stringify(recipe), 'command line', undefined, undefined, { argv: inv.argv } satisfies LoadOptions);
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    // point at the option, not at a position in text nobody wrote
    const option: Record<string, string> = { 'steps[0].filter': '--filter', 'steps[0].duration': '--duration', 'steps[0].buffer': '--buffer', ...fromOption };
    throw new RecipeError(err.problems.map((p) => ({ where: 'gadget-run:', path: option[p.path] ?? (p.path.startsWith('steps[0].params') ? `--param ${p.path.slice(16)}` : p.path), message: p.message })));
  }
  const format = formatOf(inv.values.output) ?? (process.stdout.isTTY ? 'columns' : 'json');
  return execute(loaded, inv.values, { format, outDir: inv.values.out, quiet: true });
}

/** A --param value as YAML would read it: numbers and booleans typed, the rest text. */
function scalar(v: string): unknown {
  if (v === 'true' || v === 'false') return v === 'true';
  return v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
}

interface ExecuteOptions {
  format?: OutputFormat;
  /** undefined: a temporary folder, removed after the run (a one-liner without --out) */
  outDir?: string;
  /** a one-liner: the terminal report only says what failed */
  quiet?: boolean;
}

async function execute(loaded: LoadedRecipe, values: Values, opts: ExecuteOptions): Promise<number> {
  const { chooseUser, WorkloadUserError } = await import('./workload.ts');
  let user;
  try {
    user = chooseUser(values.user, loaded.recipe.user);
  } catch (err) {
    if (!(err instanceof WorkloadUserError)) throw err;
    const { RecipeError } = await import('./recipe.ts');
    throw new RecipeError([{ where: values.user !== undefined ? '--user' : loaded.file, path: values.user !== undefined ? '' : 'user', message: err.message }]);
  }
  const maxDurationMs = await durationOf('max-duration', values['max-duration']);
  const temporary = opts.outDir === undefined;
  const outDir = opts.outDir ?? fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'gadget-run-'));
  prepareOutDir(outDir);
  const [{ runRecipe }, { Progress, EventPrinter }] = await Promise.all([import('./run.ts'), import('./progress.ts')]);
  mark('run modules imported');
  const progress = new Progress({ stream: process.stderr });
  // rows on a terminal's stdout take the progress line away first; it comes back at its next tick
  const printer = opts.format ? new EventPrinter(opts.format, process.stdout, process.stdout.isTTY && process.stderr.isTTY ? () => progress.clear() : undefined) : undefined;
  onStdoutGone = () => {
    printer?.stop();
    process.kill(process.pid, 'SIGINT');
  };
  // with events on stdout, everything else goes to stderr so that stdout stays parseable
  const out = opts.format ? process.stderr : process.stdout;
  try {
    const summary = await runRecipe(loaded, {
      outDir,
      objectDir: values.objects ?? process.env.GADGET_RUN_OBJECTS ?? path.join(ROOT, 'build/bpf'),
      maxDurationMs,
      user,
      updateBaseline: values['update-baseline'],
      ...(values.junit !== undefined ? { junit: values.junit } : {}),
      log: (line) => progress.log(`gadget-run: ${line}`),
      observer: {
        attached: (steps) => {
          progress.attached(steps);
          printer?.attached(steps);
        },
        captured: () => {
          progress.captured();
          printer?.captured();
        },
      },
    });
    return await publish(summary, loaded, { outDir, temporary, out, quiet: opts.quiet });
  } finally {
    if (temporary) fs.rmSync(outDir, { recursive: true, force: true });
  }
}

/** The terminal report (or, on GitHub Actions, fenced output, annotations and the step summary) and the exit code; judge.ts wrote the files. */
async function publish(summary: Summary, loaded: LoadedRecipe, opts: { outDir: string; temporary?: boolean; out: NodeJS.WritableStream; quiet?: boolean }): Promise<number> {
  const { outDir, temporary, out } = opts;
  const [{ renderTerminal, renderMarkdown }, github, { exitCodeFor }] = await Promise.all([import('./report.ts'), import('./reporters/github.ts'), import('./summary.ts')]);
  const report = temporary ? renderTerminal(summary, '(not kept: give --out DIR to keep the artifacts)') : renderTerminal(summary, outDir);
  if (github.onGithubActions()) {
    // the report quotes workload text (args, paths): fenced, so none of it is a workflow command
    out.write(github.fenceCommands(report));
    out.write(github.runAnnotations(summary, loaded));
    github.appendStepSummary(renderMarkdown(summary));
  } else if (!opts.quiet || summary.status !== 'passed') {
    out.write(report);
  }
  return exitCodeFor(summary);
}

async function replayCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length !== 1) throw new UsageError('replay takes one recipe file', 'replay');
  const from = inv.values.from;
  if (from === undefined) throw new UsageError('replay needs --from DIR: the --out folder of an earlier run', 'replay');
  const { loadRecipeFile } = await import('./recipe.ts');
  const loaded = loadRecipeFile(inv.positionals[0], undefined, await limitsOf(inv.values), { inputs: await setsOf(inv.values) });
  const outDir = inv.values.out ?? from;
  prepareOutDir(outDir);
  const { replayRecipe } = await import('./replay.ts');
  const summary = await replayRecipe(loaded, from, { outDir, updateBaseline: inv.values['update-baseline'], ...(inv.values.junit !== undefined ? { junit: inv.values.junit } : {}) });
  return publish(summary, loaded, { outDir, out: process.stdout });
}

// ---------------------------------------------------------------------------
// validate

async function validateCommand(inv: Invocation): Promise<number> {
  if (!inv.positionals.length) throw new UsageError('validate takes one or more recipe files', 'validate');
  const limits = await limitsOf(inv.values);
  const inputs = await setsOf(inv.values);
  const { API_VERSIONS, loadRecipeFile, STDIN_NAME } = await import('./recipe.ts');
  let failed = false;
  for (const file of inv.positionals) {
    try {
      const { recipe } = loadRecipeFile(file, undefined, limits, { inputs });
      const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
      process.stdout.write(`${file === '-' ? STDIN_NAME : file}: ok (${n(recipe.steps.length, 'step')}${recipe.assertions?.length ? `, ${n(recipe.assertions.length, 'assertion')}` : ''}) — ${recipe.apiVersion ?? `${API_VERSIONS[0]} (the default)`}\n`);
    } catch (err) {
      if ((err as Error).name !== 'RecipeError') throw err;
      await reportRecipeError(err as Error & { problems: Problem[] });
      failed = true;
    }
  }
  process.stdout.write(`recipe versions this gadget-run reads: ${API_VERSIONS.join(', ')}\n`);
  return failed ? 2 : 0;
}

// ---------------------------------------------------------------------------
// gadgets

async function gadgetsCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length > 1) throw new UsageError('gadgets takes at most one gadget id', 'gadgets');
  const { checkSupport, findGadget, gadgets } = await import('../steps/index.ts');
  const all = Object.values(gadgets as Record<string, GadgetDefinition>);
  const id = inv.positionals[0];
  let defs = all;
  if (id !== undefined) {
    const def = findGadget(id);
    if (!def) throw new OptionError(`unknown gadget "${id}" (known: ${all.map((d) => d.id).join(', ')})`);
    defs = [def];
  }
  const rows = defs.map((def) => {
    const { why, missingOptional } = checkSupport(def);
    return {
      id: def.id,
      mode: def.mode,
      supported: !why,
      ...(why ? { reason: why } : {}),
      ...(missingOptional.length ? { missingOptional } : {}),
      description: def.description,
      fields: def.fields.map((f) => (id === undefined ? f.name : { name: f.name, type: f.type, description: f.description, ...(f.names && f.type === 'number' ? { names: Object.values(f.names) } : {}) })),
      kernelFilters: Object.keys(def.kernelFilters),
      ...(def.params ? { params: def.params } : {}),
      ...(id === undefined ? {} : { requires: def.requires }),
    };
  });
  const w = (s: string) => process.stdout.write(s);
  if (inv.values.json) {
    w(JSON.stringify(id === undefined ? rows : rows[0], null, 2) + '\n');
    return 0;
  }
  if (id !== undefined) {
    describeGadget(defs[0], rows[0], w);
    return 0;
  }
  const width = Math.max(...rows.map((r) => r.id.length));
  const pad = ''.padEnd(width);
  for (const r of rows) {
    w(`${r.id.padEnd(width)}  ${r.mode.padEnd(8)}  ${r.supported ? 'ok' : 'unsupported'}  ${r.description}\n`);
    if (r.reason) w(`${pad}  ↳ ${r.reason}\n`);
    w(`${pad}  fields: ${(r.fields as string[]).join(', ')}\n`);
    if (r.kernelFilters.length) w(`${pad}  filtered in the kernel (==): ${r.kernelFilters.join(', ')}\n`);
    for (const [name, p] of paramsOf(r.params)) w(`${pad}  params.${name} (${p.type}): ${p.description ?? ''}\n`);
    if (r.missingOptional) w(`${pad}  without: ${r.missingOptional.join(', ')} (not on this kernel)\n`);
  }
  w(`\n(gadget-run gadgets ID for one gadget's fields, types and hooks)\n`);
  return 0;
}

type ParamSchema = { type?: string; description?: string; default?: unknown; enum?: unknown[] };

function paramsOf(params: Record<string, unknown> | undefined): [string, ParamSchema][] {
  return Object.entries((params?.properties ?? {}) as Record<string, ParamSchema>);
}

function describeGadget(def: GadgetDefinition, row: { supported: boolean; reason?: string; missingOptional?: string[] }, w: (s: string) => void): void {
  w(`${def.id} (${def.mode}): ${def.description}\n`);
  w(`support: ${row.supported ? 'ok on this machine' : `unsupported — ${row.reason}`}\n`);
  const kernel = new Set(Object.keys(def.kernelFilters));
  const width = Math.max(...def.fields.map((f) => f.name.length));
  const typeWidth = Math.max(...def.fields.map((f) => f.type.length));
  w(`\nfields (${kernel.size ? '* = an == filter on it runs in the kernel' : 'every filter runs in user space'}):\n`);
  for (const f of def.fields) {
    const names = f.names && f.type === 'number' ? ` (names: ${Object.values(f.names).slice(0, 8).join(', ')}${Object.keys(f.names).length > 8 ? ', …' : ''})` : '';
    w(`  ${kernel.has(f.name) ? '*' : ' '} ${f.name.padEnd(width)}  ${f.type.padEnd(typeWidth)}  ${f.description}${names}\n`);
  }
  const params = paramsOf(def.params);
  if (params.length) {
    w(`\nparams:\n`);
    for (const [name, p] of params) {
      const extra = [p.default !== undefined ? `default ${JSON.stringify(p.default)}` : '', p.enum ? `one of ${p.enum.map((e) => JSON.stringify(e)).join(', ')}` : ''].filter(Boolean).join('; ');
      w(`  ${name} (${p.type ?? 'any'}): ${p.description ?? ''}${extra ? ` [${extra}]` : ''}\n`);
    }
  }
  w(`\nhooks:\n`);
  const missing = new Set(row.missingOptional ?? []);
  for (const r of def.requires) {
    if ('iterator' in r) w(`  iterator ${r.iterator}\n`);
    else if ('perfEvent' in r) w(`  perf event ${r.perfEvent} (one per CPU)\n`);
    else w(`  tracepoint ${r.tracepoint}${r.optional ? ' (optional)' : ''}${missing.has(r.tracepoint) ? ' — not on this kernel' : ''}\n`);
  }
  w(`\nobject: ${def.object}\n`);
}
