/**
 * gadget-run's command line. Commands are entries of COMMANDS (one entry per
 * subcommand: its help, its options from OPTIONS, and its implementation), the
 * cluster commands (deploy, undeploy, agent, run --cluster) among them, so an
 * option means the same in every command (-o is always the output format);
 * `gadget-run CATEGORY/NAME …` is the one-liner (a one-step recipe built in
 * memory). docs/cli.md is generated from these tables (scripts/cli-docs.mjs).
 * Exit: 0 passed; 1 the verdict failed (an assertion, the workload's exit
 * code, lost events, a failed step, a new baseline key); 2 bad command line, recipe,
 * --out or --from; 3 could not trace here (not root, no BTF, a hook missing, load or
 * attach refused); 130/143 interrupted.
 *
 * The commands are the library API (src/api: run, replay, validate, gadgets) plus
 * the terminal: option parsing, progress, reports and exit codes stay here.
 *
 * Start-up is on the critical path of every run (bench/startup.ts): this file
 * imports only node built-ins, type declarations and the light modules of the
 * error classes and the package's location at the top; each command loads what
 * it needs with import() when it runs, so `--version` or `help` never parse the
 * recipe, JSONata, ajv or libbpf code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { mark } from '../timing.ts';
import type { LoadedRecipe, Limits } from '../runner/recipe.ts';
import type { OutputFormat } from './progress.ts';
import type { Summary } from '../runner/summary.ts';
import type { GadgetDefinition, Requirement } from '../steps/types.ts';
import { requirementName, VariantPinError } from '../steps/hooks.ts';
import type { Selection } from '../k8s/crd.ts';
import type { ClusterRunResult } from '../api/types.ts';
import { CouldNotTraceError, InterruptedError, OptionError as ApiOptionError, OutDirError, RecipeError, ReplayError, UnknownGadgetError } from '../api/errors.ts';
import { defaultObjectDir, packageRoot } from '../util/package-root.ts';

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
  /** its values may start with "-" (a descending sort key), so the next argument is its value whatever it looks like */
  dashValue?: boolean;
  help: string;
}

const OPTIONS = {
  out: { type: 'string', short: 'O', value: 'DIR', help: 'where artifacts go (run: default out/<recipe name>; a one-liner writes none without it; btfgen: the folder it writes)' },
  output: { type: 'string', short: 'o', value: 'FORMAT', help: 'also print the events on stdout as they come: json (NDJSON, each with its step) or columns (a table)' },
  set: { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'set a recipe input (repeatable); the recipe declares them under inputs:' },
  'max-duration': { type: 'string', value: 'D', help: "cap every step's duration (e.g. 2s), for trying a recipe out" },
  objects: { type: 'string', value: 'DIR', help: 'compiled BPF objects (default: build/bpf of gadget-run, or $GADGET_RUN_OBJECTS)' },
  btf: { type: 'string', value: 'FILE', help: "this kernel's vmlinux BTF, for a kernel without /sys/kernel/btf/vmlinux: raw BTF or a vmlinux ELF with a .BTF section (default $GADGET_RUN_BTF; docs/kernels.md)" },
  'kernel-btf': { type: 'string', multiple: true, value: 'FILE', help: "btfgen: a kernel's vmlinux BTF (RELEASE.btf, a vmlinux ELF, or /sys/kernel/btf/vmlinux); repeatable, and more files may follow" },
  'limit-ring': { type: 'string', value: 'SIZE', help: "most ring-buffer memory a recipe's steps may take together (default 256MiB)" },
  'limit-output': { type: 'string', value: 'SIZE', help: "most bytes of events a recipe's steps may write together (default 4GiB)" },
  'inline-limit': { type: 'string', value: 'SIZE', help: "run --cluster: a node's gzipped result above SIZE is fetched from its agent through the pod's port-forward instead of stored in ConfigMaps (default: the recipe's cluster.inline_limit, else 1MiB)" },
  'fetch-concurrency': { type: 'string', value: 'N', help: 'run --cluster: how many nodes\' results are fetched (one port-forward each when above the inline limit) and unpacked at once (default 8, at most 64)' },
  junit: { type: 'string', value: 'FILE', help: 'also write a JUnit XML report (a testcase per step and per assertion)' },
  from: { type: 'string', value: 'DIR', help: 'the --out folder of an earlier run, whose raw/ record replay evaluates' },
  'update-baseline': { type: 'boolean', help: "write each step's baseline file from this run's keys instead of failing on new ones" },
  'no-export': { type: 'boolean', help: "do not send the events where the recipe's export: says (OTLP); artifacts and the verdict are the same" },
  user: { type: 'string', value: 'NAME', help: "run the workload as this user (name or uid; root only this way); default: the recipe's user, else whoever ran sudo, else you" },
  json: { type: 'boolean', help: 'print JSON instead of text' },
  filter: { type: 'string', short: 'F', value: 'FILTER', help: 'Inspektor Gadget filter: field==value, !=, >=, >, <=, <, ~regex; comma = AND' },
  duration: { type: 'string', short: 'd', value: 'D', help: 'how long to trace (e.g. 5s, 1m30s); default: until the command ends, or until Ctrl-C' },
  param: { type: 'string', multiple: true, value: 'NAME=VALUE', help: "set a gadget parameter (repeatable; `gadget-run gadgets ID` lists them)" },
  buffer: { type: 'string', value: 'SIZE', help: 'ring buffer size, a power of two (default 16MiB)' },
  interval: { type: 'string', value: 'D', help: 'top gadgets: how often to read and clear the counters (default 1s)' },
  sort: { type: 'string', value: 'FIELDS', dashValue: true, help: 'top gadgets: fields to sort the rows by, comma-separated, - for descending (e.g. -wbytes,pid)' },
  'max-rows': { type: 'string', value: 'N', help: 'top gadgets: rows written per interval, the first by --sort (default 20; the step warns of rows cut)' },
  cluster: { type: 'boolean', help: 'run on the nodes of the Kubernetes cluster (through the agents deploy installs; docs/kubernetes.md) instead of here' },
  node: { type: 'string', multiple: true, value: 'NODE', help: 'run --cluster: only on this node (repeatable, or comma-separated; default every node); agent: the node it serves (default $NODE_NAME)' },
  namespace: { type: 'string', short: 'n', value: 'NS', help: 'run --cluster: trace only the containers of pods in this namespace' },
  pod: { type: 'string', short: 'p', value: 'POD', help: 'run --cluster: trace only the containers of this pod' },
  container: { type: 'string', short: 'c', value: 'NAME', help: 'run --cluster: trace only the containers of this name' },
  selector: { type: 'string', short: 'l', multiple: true, value: 'KEY=VALUE', help: 'run --cluster: trace only the containers of pods with this label (repeatable, or comma-separated)' },
  apply: { type: 'boolean', help: 'apply the manifests with your kubeconfig (server-side apply) instead of printing them' },
  image: { type: 'string', value: 'IMAGE', help: "the agents' container image (default ghcr.io/gadget-run/gadget-run:latest)" },
  'pull-policy': { type: 'string', value: 'POLICY', help: "the agents' imagePullPolicy: Always, IfNotPresent (the default) or Never" },
  caps: { type: 'string', value: 'CAP,…', help: "the agents' capabilities, replacing the default BPF,PERFMON,SYS_ADMIN,SYS_PTRACE,NET_RAW,NET_ADMIN" },
  'run-namespace': { type: 'string', multiple: true, value: 'NS', help: 'run --cluster: the namespace of the GadgetRun and its results (default gadget; your RBAC there decides who reads them); deploy: a namespace runs may use (repeatable), the agents get their Role there' },
  'btf-dir': { type: 'string', value: 'DIR', help: "deploy: the nodes' folder of BTF files (btfgen, one per kernel release) for kernels without /sys/kernel/btf, mounted read-only as the agents' GADGET_RUN_BTF_DIR" },
  'no-host-network': { type: 'boolean', help: "agents without hostNetwork (by default they share the node's network, so that network gadgets see the node's traffic)" },
  wait: { type: 'boolean', help: 'return only once everything deploy created is gone' },
  timeout: { type: 'string', value: 'D', help: 'with --wait: give up after D (default 2m)' },
  fake: { type: 'boolean', help: 'for tests: every step captures synthetic events instead of tracing (many agents on one machine)' },
  'work-dir': { type: 'string', value: 'DIR', help: "where the agent's runs spool and evaluate (default: the temporary folder)" },
  ready: { type: 'string', value: 'FILE', help: 'written once the agent watches for runs (the readiness probe; default WORK-DIR/ready)' },
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
  /** listed under the cluster commands in `gadget-run help` */
  cluster?: boolean;
  /** a local command with a --cluster form (a usage line with --cluster): that form's line in `gadget-run help` */
  clusterSummary?: string;
  run(inv: Invocation): Promise<number>;
}

const RUN_OPTIONS: OptionName[] = ['out', 'output', 'set', 'max-duration', 'objects', 'btf', 'limit-ring', 'limit-output', 'junit', 'user', 'update-baseline', 'no-export'];
/** what only `run --cluster` takes: where to run, and whose containers to trace */
const CLUSTER_RUN_OPTIONS: OptionName[] = ['cluster', 'node', 'namespace', 'pod', 'container', 'selector', 'inline-limit', 'fetch-concurrency', 'run-namespace'];
const EXIT_CODES = 'Exit: 0 passed, 1 a verdict failed, 2 bad command line or recipe, 3 could not trace here, 130/143 interrupted.';

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run a recipe: trace, write artifacts and DIR/summary.json, check assertions',
    usage: [
      'run <recipe.yaml | -> [--out DIR] [-o json|columns] [--set NAME=VALUE]… [-- CMD [ARG…]]',
      'run <recipe.yaml> --cluster [--node NODE]… [-n NS] [-p POD] [-c NAME] [-l KEY=VALUE]… [--out DIR]',
    ],
    details: `The recipe comes from a file, or from stdin with "-".
-- CMD [ARG…] gives the workload on the command line instead of the recipe's run:
it is executed as it is (no shell), in the workload's own cgroup.
With --cluster the recipe runs on every node (or each --node) of the cluster, through the
agents deploy installs, and DIR gets the nodes' results merged; -n/-p/-c/-l choose whose
containers the steps trace. ${EXIT_CODES}`,
    options: [...RUN_OPTIONS, ...CLUSTER_RUN_OPTIONS],
    clusterSummary: 'run it on every node of the cluster (or each --node), merged',
    argv: true,
    run: runCommand,
  },
  replay: {
    summary: 'evaluate a recipe again over the raw/ record of an earlier run (no root, no kernel)',
    usage: ['replay <recipe.yaml | -> --from DIR [--out DIR2]'],
    details: `Transforms, outputs, baselines and assertions are computed again from DIR/raw, and the
verdict is the one run would give: edit a transform or an assertion, see it at once.
--out defaults to DIR itself. ${EXIT_CODES}`,
    options: ['from', 'out', 'set', 'limit-ring', 'limit-output', 'junit', 'update-baseline', 'no-export'],
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
    details: `With an ID (e.g. trace/open): its fields with types and descriptions, the fields filtered in the kernel, its params and its hooks.
A gadget is ok when its hooks exist and its object loads on this kernel (loaded and verified, nothing
attached; the answer is cached per kernel build and object in /var/cache/gadget-run/probes, or
$GADGET_RUN_PROBE_CACHE: a folder, or off). Each gadget says whether its liveness can be proven
(the canary a step of it runs before the workload, recipe key liveness) or why not.`,
    options: ['json', 'objects', 'btf'],
    run: gadgetsCommand,
  },
  btfgen: {
    summary: 'write minimized BTF of kernels without /sys/kernel/btf/vmlinux, for all the objects, to ship with gadget-run',
    usage: ['btfgen --kernel-btf FILE [FILE…] --out DIR [--objects DIR]'],
    details: `Each FILE is one kernel's vmlinux BTF: raw BTF named RELEASE.btf (as BTFHub's archive names
them), a vmlinux ELF with a .BTF section (its release and build id are read from it), or
/sys/kernel/btf/vmlinux (this kernel). bpftool gen min_core_btf keeps of it what the objects
(every *.bpf.o in --objects) relocate against: DIR/RELEASE.btf, a few KB, listed with its build id
and the objects' hashes in DIR/index.json. On a kernel without its own BTF, runs take
DIR/$(uname -r).btf from $GADGET_RUN_BTF_DIR, else from btf/ in the gadget-run package
(docs/kernels.md). Needs bpftool, not root. Exit: 0 written, 2 bad command line or kernel file.`,
    options: ['kernel-btf', 'out', 'objects'],
    run: btfgenCommand,
  },
  deploy: {
    summary: 'print the Kubernetes manifests of the agents (or apply them)',
    usage: ['deploy [--apply] [--image IMAGE] [--pull-policy POLICY] [--caps CAP,…] [--no-host-network] [--btf-dir DIR] [--run-namespace NS]…'],
    details: `Without --apply: gadget-run deploy | kubectl apply -f -
The namespace gadget, the GadgetRun and GadgetRunNode CRDs, least-privilege RBAC and the agents' DaemonSet
(docs/kubernetes.md). Exit: 0 done, 1 the API server refused, 2 bad command line.`,
    options: ['apply', 'image', 'pull-policy', 'caps', 'no-host-network', 'btf-dir', 'run-namespace'],
    cluster: true,
    run: deployCommand,
  },
  undeploy: {
    summary: 'remove everything deploy created (every GadgetRun and its results too)',
    usage: ['undeploy [--wait [--timeout D]] [--run-namespace NS]…'],
    options: ['wait', 'timeout', 'run-namespace'],
    cluster: true,
    run: undeployCommand,
  },
  agent: {
    summary: 'the per-node agent the DaemonSet runs (until SIGTERM)',
    usage: ['agent [--node NODE] [--objects DIR] [--btf FILE] [--work-dir DIR] [--ready FILE] [--limit-ring SIZE] [--limit-output SIZE]'],
    details: 'It runs the GadgetRuns meant for its node and reports in their status (docs/kubernetes.md).',
    options: ['node', 'objects', 'btf', 'work-dir', 'ready', 'fake', 'limit-ring', 'limit-output'],
    cluster: true,
    run: agentCommand,
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
  usage: ['<category/name> [--filter F] [--duration D] [--param NAME=VALUE]… [--interval D] [--sort F] [--max-rows N] [-o json|columns] [--out DIR] [-- CMD [ARG…]]'],
  details: `Events print as a table on a terminal and as NDJSON otherwise (-o chooses).
Artifacts (NDJSON, summary.json, report.md) are written only with --out.
Examples:
  gadget-run trace/exec -- make test
  gadget-run trace/open --filter comm==cat --duration 5s -o json
  gadget-run top/file --filter comm==dd --max-rows 100 --duration 5s`,
  options: ['filter', 'duration', 'param', 'buffer', 'interval', 'sort', 'max-rows', 'output', 'out', 'max-duration', 'objects', 'btf', 'junit', 'user'],
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
  // a --from with no captured run in it, a bad --out or an unknown gadget are a bad command line too
  if (err instanceof OptionError || err instanceof ApiOptionError || err instanceof ReplayError || err instanceof OutDirError || err instanceof UnknownGadgetError || err instanceof VariantPinError) {
    process.stderr.write(`gadget-run: ${(err as Error).message}\n`);
    return 2;
  }
  if (err instanceof RecipeError) {
    await reportRecipeError(err);
    return 2;
  }
  const name = (err as Error | undefined)?.name;
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
  // not strict: Node's strict errors are prose only (no option name in a field); the tokens say it all
  const parsed = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of parsed.tokens) {
    if (t.kind !== 'option') continue;
    const spec = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (!spec) throw new UsageError(`Unknown option '${t.rawName}'`, name);
    if (spec.type === 'boolean' && t.value !== undefined) throw new UsageError(`option ${t.rawName} takes no value`, name);
    if (spec.type === 'string' && (t.value === undefined || (!t.inlineValue && !('dashValue' in spec && spec.dashValue) && t.value.startsWith('-')))) {
      throw new UsageError(`option ${t.rawName} needs a value${t.value === undefined ? '' : ` (for one that starts with "-", write ${t.rawName}=${t.value})`}`, name);
    }
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

/** `run <recipe.yaml | ->` from `run <recipe.yaml | -> [--out DIR] …`: a usage line up to its first optional option */
const synopsis = (usage: string) => usage.replace(/ \[-.*$/, '');

/** `gadget-run help`'s rows: [synopsis, summary], local commands first, then the cluster's */
function commandRows(): { local: string[][]; cluster: string[][] } {
  const all = [...Object.values(COMMANDS), ONE_LINER];
  return {
    local: all.filter((c) => !c.cluster).map((c) => [synopsis(c.usage[0]), c.summary]),
    cluster: [
      ...all.flatMap((c) => (c.clusterSummary ? c.usage.filter((u) => u.includes(' --cluster')).map((u) => [synopsis(u), c.clusterSummary!]) : [])),
      ...all.filter((c) => c.cluster).map((c) => [synopsis(c.usage[0]), c.summary]),
    ],
  };
}

function usageText(): string {
  const { local, cluster } = commandRows();
  const width = Math.max(...[...local, ...cluster].map(([u]) => u.length));
  const table = (rows: string[][]) => rows.map(([u, s]) => `  ${u.padEnd(width)}  ${s}\n`).join('');
  return `usage: gadget-run COMMAND [options]\n\ncommands:\n${table(local)}
cluster commands (Kubernetes; docs/kubernetes.md):
${table(cluster)}
gadget-run help COMMAND (or COMMAND --help) shows a command's options; gadget-run --version the version.
examples:
  gadget-run run recipes/quickstart.yaml --out out/quickstart
  gadget-run trace/exec -- make test
  gadget-run gadgets trace/open
`;
}

/**
 * docs/cli.md: every command and option, from the same tables as the help (scripts/cli-docs.mjs
 * writes it; test/cli/commands.test.ts fails when the file and the tables differ).
 */
export function cliReference(): string {
  // help text is plain text: <recipe name> must show, not vanish as an HTML tag
  const text = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const cell = (t: string) => text(t).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const flag = (o: OptionName) => {
    const spec: OptionSpec = OPTIONS[o];
    return `${spec.short ? `\`-${spec.short}\`, ` : ''}\`--${o}${spec.value ? ` ${spec.value}` : ''}\``;
  };
  const entries: [string, Command][] = [...Object.entries(COMMANDS), ['CATEGORY/NAME', ONE_LINER]];
  const section = ([name, c]: [string, Command]) => {
    const options = [...c.options, 'help' as const];
    return `### ${name === 'CATEGORY/NAME' ? 'gadget-run CATEGORY/NAME (the one-liner)' : `gadget-run ${name}`}

${c.summary}.

\`\`\`
${c.usage.map((u) => `gadget-run ${u}`).join('\n')}
\`\`\`
${c.details ? `\n${text(c.details)}\n` : ''}
| option | meaning |
|---|---|
${options.map((o) => `| ${flag(o)} | ${cell(OPTIONS[o].help)} |`).join('\n')}
`;
  };
  const takers = (o: OptionName) => entries.filter(([, c]) => o === 'help' || c.options.includes(o)).map(([n]) => (n === 'CATEGORY/NAME' ? 'one-liner' : n));
  return `# gadget-run command line

<!-- generated from src/cli/commands.ts by \`node scripts/cli-docs.mjs\`: edit the tables there, not this file -->

\`gadget-run COMMAND [options]\`. Every command takes its options from one table, so an option
means the same wherever it appears: \`-o\` is always the output format (json or columns),
\`--out\`/\`-O\` always the output folder. Cluster commands (Kubernetes) are rows of the same
table; docs/kubernetes.md says how the cluster side works.

${EXIT_CODES} Cluster commands exit 1 when the API server refuses.

## Commands

${entries.filter(([, c]) => !c.cluster).map(section).join('\n')}
## Cluster commands (Kubernetes)

\`run --cluster\` is \`run\` above, with its cluster options.

${entries.filter(([, c]) => c.cluster).map(section).join('\n')}
## Every option

| option | commands |
|---|---|
${(Object.keys(OPTIONS) as OptionName[]).map((o) => `| ${flag(o)} | ${takers(o).join(', ')} |`).join('\n')}
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

async function reportRecipeError(err: RecipeError): Promise<void> {
  process.stderr.write(err.message + '\n');
  const github = await import('./reporters/github.ts');
  if (github.onGithubActions()) process.stdout.write(github.problemAnnotations(err.problems));
}

// ---------------------------------------------------------------------------
// Option values

async function limitsOf(values: Values): Promise<Limits> {
  const { parseSize } = await import('../steps/duration.ts');
  const { DEFAULT_LIMITS } = await import('../runner/recipe.ts');
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
  const { parseDuration } = await import('../steps/duration.ts');
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
  const { parseSets } = await import('../runner/inputs.ts');
  try {
    return parseSets(values.set ?? []);
  } catch (err) {
    throw new OptionError((err as Error).message);
  }
}

/**
 * --btf FILE, else $GADGET_RUN_BTF: the kernel BTF a run relocates against,
 * checked before anything runs (a file that is not BTF is a bad command line).
 */
async function useBtfOption(values: Values): Promise<void> {
  const file = values.btf ?? process.env.GADGET_RUN_BTF;
  if (!file) return;
  const from = values.btf !== undefined ? '--btf' : 'GADGET_RUN_BTF';
  const { BtfFileError, useBtfFile } = await import('../ebpf/kernel-btf.ts');
  try {
    useBtfFile(file, from);
  } catch (err) {
    if (err instanceof BtfFileError) throw new OptionError(`${from} ${file}: ${err.message}`);
    throw err;
  }
}

// ---------------------------------------------------------------------------
// run, and the one-liner

async function runCommand(inv: Invocation): Promise<number> {
  if (inv.values.cluster) return clusterRunCommand(inv);
  const clusterOnly = CLUSTER_RUN_OPTIONS.filter((o) => inv.values[o] !== undefined);
  if (clusterOnly.length) throw new UsageError(`${clusterOnly.map(flagOf).join(', ')}: only with --cluster (a local run chooses its containers in the recipe: containers:)`, 'run');
  if (inv.positionals.length !== 1) throw new UsageError('run takes one recipe file (or - to read it from stdin)', 'run');
  const format = formatOf(inv.values.output);
  await useBtfOption(inv.values);
  const { load } = await import('../api/run.ts');
  mark('recipe module imported');
  const loaded = load(inv.positionals[0], { limits: await limitsOf(inv.values), set: await setsOf(inv.values), ...(inv.argv ? { command: inv.argv } : {}) });
  mark('recipe validated');
  return execute(loaded, inv.values, { format, outDir: inv.values.out ?? path.join('out', loaded.recipe.name) });
}

/** The one-liner's options, as its problems name them (a recipe built in memory has no lines). */
const ONE_LINER_OPTIONS: Record<string, string> = { filter: '--filter', duration: '--duration', buffer: '--buffer', interval: '--interval', sort: '--sort', max_rows: '--max-rows' };

async function oneLinerCommand(inv: Invocation): Promise<number> {
  const [id] = inv.positionals;
  if (inv.positionals.length > 1) throw new UsageError(`unexpected ${JSON.stringify(inv.positionals[1])}: give the command to trace after --`, id);
  await useBtfOption(inv.values);
  let params: Record<string, unknown> | undefined;
  if (inv.values.param?.length) {
    const { parseSets } = await import('../runner/inputs.ts');
    params = {};
    try {
      for (const [k, v] of Object.entries(parseSets(inv.values.param, '--param'))) params[k] = scalar(v);
    } catch (err) {
      throw new OptionError((err as Error).message);
    }
  }
  const { loadGadgetStep } = await import('../api/one-step.ts');
  const { filter, duration, buffer, interval, sort } = inv.values;
  // a number as YAML would read it; anything else goes to the recipe check, which names --max-rows
  const maxRows = inv.values['max-rows'] === undefined ? undefined : scalar(inv.values['max-rows']);
  const loaded = loadGadgetStep(
    id,
    { filter, duration, buffer, interval, sort, max_rows: maxRows as number | undefined, params },
    { where: 'gadget-run:', option: (key) => ONE_LINER_OPTIONS[key] ?? (key.startsWith('params') ? `--param ${key.slice(7)}` : undefined) },
    inv.argv,
  );
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

/** run(), with the terminal: progress line, events on stdout, Ctrl-C, the report and the exit code. */
async function execute(loaded: LoadedRecipe, values: Values, opts: ExecuteOptions): Promise<number> {
  const maxDuration = values['max-duration'];
  await durationOf('max-duration', maxDuration);
  const temporary = opts.outDir === undefined;
  const outDir = opts.outDir ?? fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'gadget-run-'));
  const [api, { Progress, EventPrinter }] = await Promise.all([import('../api/run.ts'), import('./progress.ts')]);
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
    let summary: Summary;
    try {
      summary = await api.run(loaded, {
        out: outDir,
        ...(values.user !== undefined ? { user: values.user } : {}),
        ...(maxDuration !== undefined ? { maxDuration } : {}),
        ...(values.objects !== undefined ? { objects: values.objects } : {}),
        ...(values.junit !== undefined ? { junit: values.junit } : {}),
        updateBaseline: values['update-baseline'],
        export: !values['no-export'],
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
        // the CLI owns its process: Ctrl-C stops the run, a second one ends it at once
        processSignals: true,
      });
    } catch (err) {
      // not a verdict, but the run wrote its summary: report it as any other
      if ((err instanceof InterruptedError || err instanceof CouldNotTraceError) && err.result) summary = err.result;
      // --user names the option, as the recipe's user names its line
      else if (err instanceof ApiOptionError && err.option === 'user') throw new RecipeError([{ where: '--user', path: '', message: err.reason }]);
      else throw err;
    }
    return await publish(summary, loaded, { outDir, temporary, out, quiet: opts.quiet });
  } finally {
    if (temporary) fs.rmSync(outDir, { recursive: true, force: true });
  }
}

/** The terminal report (or, on GitHub Actions, fenced output, annotations and the step summary) and the exit code; judge.ts wrote the files. */
async function publish(summary: Summary, loaded: LoadedRecipe, opts: { outDir: string; temporary?: boolean; out: NodeJS.WritableStream; quiet?: boolean; tail?: string }): Promise<number> {
  const { outDir, temporary, out } = opts;
  const [{ renderTerminal, renderMarkdown }, github, { exitCodeFor }] = await Promise.all([import('../runner/report.ts'), import('./reporters/github.ts'), import('../runner/summary.ts')]);
  const report = (temporary ? renderTerminal(summary, '(not kept: give --out DIR to keep the artifacts)') : renderTerminal(summary, outDir)) + (opts.tail ?? '');
  if (github.onGithubActions()) {
    // the report quotes workload text (args, paths): fenced, so none of it is a workflow command
    out.write(github.fenceCommands(report));
    out.write(github.runAnnotations(summary, loaded));
    github.appendStepSummary(renderMarkdown(summary));
  } else if (!opts.quiet || summary.status !== 'passed') {
    out.write(report);
  } else {
    // a one-liner that passed still says what its steps warned of (rows cut at max_rows, counts lost)
    for (const s of summary.steps) for (const w of s.warnings ?? []) out.write(`gadget-run: ${s.id}: ${w}\n`);
  }
  return exitCodeFor(summary);
}

async function replayCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length !== 1) throw new UsageError('replay takes one recipe file', 'replay');
  const from = inv.values.from;
  if (from === undefined) throw new UsageError('replay needs --from DIR: the --out folder of an earlier run', 'replay');
  const { load, replay } = await import('../api/run.ts');
  const loaded = load(inv.positionals[0], { limits: await limitsOf(inv.values), set: await setsOf(inv.values) });
  const outDir = inv.values.out ?? from;
  const summary = await replay(loaded, { from, out: outDir, updateBaseline: inv.values['update-baseline'], export: !inv.values['no-export'], ...(inv.values.junit !== undefined ? { junit: inv.values.junit } : {}) });
  return publish(summary, loaded, { outDir, out: process.stdout });
}

// ---------------------------------------------------------------------------
// The cluster commands (src/k8s, loaded only when one runs)

/** `--name` (or `-n, --name`) as the user may have typed it. */
function flagOf(name: OptionName): string {
  const spec: OptionSpec = OPTIONS[name];
  return spec.short ? `-${spec.short}/--${name}` : `--${name}`;
}

/** Why a run option does not go with --cluster: the nodes' agents run the recipe file as written. */
const NOT_WITH_CLUSTER: Partial<Record<OptionName, string>> = {
  output: 'the events come back when the nodes are done: read them in the --out folder',
  set: 'the nodes read the recipe file as written: put the values in it',
  objects: "each node uses the BPF objects in its agent's image",
  btf: "each node uses its own kernel's BTF, or its agent's GADGET_RUN_BTF or GADGET_RUN_BTF_DIR",
  'limit-ring': 'each node applies the default limits',
  'limit-output': 'each node applies the default limits',
  user: "the nodes run the recipe's own workload settings",
};

async function clusterRunCommand(inv: Invocation): Promise<number> {
  // `-o DIR` was the folder here once: say where the folder went before saying -o does not apply
  formatOf(inv.values.output);
  const refused = (Object.keys(NOT_WITH_CLUSTER) as OptionName[]).filter((o) => inv.values[o] !== undefined);
  if (refused.length) throw new UsageError(refused.map((o) => `${flagOf(o)} does not go with --cluster: ${NOT_WITH_CLUSTER[o]}`).join('; '), 'run');
  if (inv.argv) throw new UsageError('-- CMD does not go with --cluster: a cluster run takes its workload from the recipe', 'run');
  if (inv.positionals.length !== 1) throw new UsageError('run --cluster takes one recipe file', 'run');
  const [file] = inv.positionals;
  // the nodes are sent the file's text, read again after it is checked here
  if (file === '-') throw new UsageError('run --cluster takes a recipe file, not - (stdin): the nodes are sent the file', 'run');
  const selector: Selection = {};
  if (inv.values.namespace !== undefined) selector.namespace = inv.values.namespace;
  if (inv.values.pod !== undefined) selector.pod = inv.values.pod;
  if (inv.values.container !== undefined) selector.container = inv.values.container;
  for (const pair of (inv.values.selector ?? []).flatMap((l) => l.split(','))) {
    const m = /^([^=]+)=(.*)$/.exec(pair);
    if (!m) throw new OptionError(`-l ${JSON.stringify(pair)}: a label selector is KEY=VALUE (e.g. -l app=web)`);
    (selector.labels ??= {})[m[1]] = m[2];
  }
  const maxDuration = inv.values['max-duration'];
  await durationOf('max-duration', maxDuration);
  const inlineLimit = inv.values['inline-limit'];
  if ((inv.values['run-namespace']?.length ?? 0) > 1) throw new UsageError('a run lives in one namespace: give --run-namespace once', 'run');
  const runNamespace = inv.values['run-namespace']?.[0];
  if (inlineLimit !== undefined) {
    const { parseSize } = await import('../steps/duration.ts');
    try {
      parseSize(inlineLimit);
    } catch (err) {
      throw new OptionError(`--inline-limit: ${(err as Error).message}`);
    }
  }
  const [{ load }, { runCluster, MAX_FETCH_CONCURRENCY }] = await Promise.all([import('../api/run.ts'), import('../api/cluster.ts')]);
  const fetchText = inv.values['fetch-concurrency'];
  const fetchConcurrency = fetchText === undefined ? undefined : Number(fetchText);
  if (fetchConcurrency !== undefined && !(/^\d+$/.test(fetchText!) && fetchConcurrency >= 1 && fetchConcurrency <= MAX_FETCH_CONCURRENCY)) {
    throw new OptionError(`--fetch-concurrency: ${JSON.stringify(fetchText)} is not a number of nodes from 1 to ${MAX_FETCH_CONCURRENCY} (e.g. --fetch-concurrency 16)`);
  }
  const loaded = load(file);
  const outDir = inv.values.out ?? path.join('out', loaded.recipe.name);
  const [{ apiMessage }, { renderNodes }] = await Promise.all([import('../k8s/client.ts'), import('../k8s/cluster-run.ts')]);
  const log = (line: string) => process.stderr.write(`gadget-run: ${line}\n`);
  // first Ctrl-C/SIGTERM: cancel on every node and merge what they captured; second: exit now
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) {
      process.stderr.write(`gadget-run: second ${signal}: exiting now (the run stays cancelled)\n`);
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    }
    process.stderr.write(`gadget-run: ${signal}: cancelling on every node (again to exit at once)\n`);
    // the signal's name becomes the summary's: SIGTERM exits 143 as a local run does
    abort.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let summary: ClusterRunResult;
    try {
      summary = await runCluster(loaded, {
        out: outDir,
        cluster: { nodes: inv.values.node?.flatMap((n) => n.split(',')).filter(Boolean), ...selector },
        ...(maxDuration !== undefined ? { maxDuration } : {}),
        ...(inlineLimit !== undefined ? { inlineLimit } : {}),
        ...(fetchConcurrency !== undefined ? { fetchConcurrency } : {}),
        ...(runNamespace !== undefined ? { runNamespace } : {}),
        updateBaseline: inv.values['update-baseline'],
        export: !inv.values['no-export'],
        ...(inv.values.junit !== undefined ? { junit: inv.values.junit } : {}),
        log,
        signal: abort.signal,
      });
    } catch (err) {
      // cancelled: what the nodes captured was judged and written; report it as any other
      if (err instanceof InterruptedError && err.result) summary = err.result as ClusterRunResult;
      else throw err;
    }
    // the same edge as run and replay: terminal report (or GitHub's fenced report and annotations), exit code
    return await publish(summary, loaded, { outDir, out: process.stdout, tail: renderNodes(summary) });
  } catch (err) {
    // the recipe's and the options' errors are the CLI's usual ones (exit 2); the rest is the cluster's
    if (err instanceof RecipeError || err instanceof ApiOptionError || err instanceof OutDirError) throw err;
    process.stderr.write(`gadget-run run --cluster: ${apiMessage(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function deployCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length) throw new UsageError(`deploy takes no ${JSON.stringify(inv.positionals[0])}: only options`, 'deploy');
  const [{ applyManifests, deployOptions, DeployUsageError, renderManifests }, { manifests }] = await Promise.all([import('../k8s/deploy.ts'), import('../k8s/manifests.ts')]);
  let opts;
  try {
    opts = deployOptions(inv.values);
  } catch (err) {
    if (err instanceof DeployUsageError) throw new OptionError(err.message);
    throw err;
  }
  if (!inv.values.apply) {
    process.stdout.write(renderManifests(opts));
    return 0;
  }
  const { Api, apiMessage, loadKubeConfig } = await import('../k8s/client.ts');
  try {
    await applyManifests(new Api(loadKubeConfig()), manifests(opts), (l) => process.stderr.write(`gadget-run deploy: ${l}\n`));
    return 0;
  } catch (err) {
    process.stderr.write(`gadget-run deploy: ${apiMessage(err)}\n`);
    return 1;
  }
}

async function undeployCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length) throw new UsageError(`undeploy takes no ${JSON.stringify(inv.positionals[0])}: only options`, 'undeploy');
  if (inv.values.timeout !== undefined && !inv.values.wait) throw new UsageError('--timeout is how long --wait waits: give --wait too', 'undeploy');
  const timeoutMs = (await durationOf('timeout', inv.values.timeout)) ?? 120_000;
  const [{ deployOptions, removeManifests }, { manifests }, { Api, apiMessage, loadKubeConfig }] = await Promise.all([import('../k8s/deploy.ts'), import('../k8s/manifests.ts'), import('../k8s/client.ts')]);
  // the agents' Roles in the namespaces deploy --run-namespace gave go too
  const objects = manifests(deployOptions({ 'run-namespace': inv.values['run-namespace'] }));
  try {
    await removeManifests(new Api(loadKubeConfig()), objects, { wait: inv.values.wait === true, timeoutMs, log: (l) => process.stderr.write(`gadget-run undeploy: ${l}\n`) });
    return 0;
  } catch (err) {
    process.stderr.write(`gadget-run undeploy: ${apiMessage(err)}\n`);
    return 1;
  }
}

async function agentCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length) throw new UsageError(`agent takes no ${JSON.stringify(inv.positionals[0])}: only options`, 'agent');
  if ((inv.values.node?.length ?? 0) > 1) throw new UsageError('an agent serves one node: give --node once', 'agent');
  const node = inv.values.node?.[0] ?? process.env.NODE_NAME;
  if (!node) throw new OptionError('agent: no node name: set NODE_NAME (the DaemonSet sets it from spec.nodeName) or --node');
  const workDir = inv.values['work-dir'] ?? (await import('node:os')).tmpdir();
  await useBtfOption(inv.values);
  const { serveAgent } = await import('../k8s/agent.ts');
  return serveAgent({
    node,
    fake: inv.values.fake === true,
    objectDir: inv.values.objects ?? defaultObjectDir(),
    workDir,
    readyFile: inv.values.ready ?? path.join(workDir, 'ready'),
    limits: await limitsOf(inv.values),
    // deploy --run-namespace: the namespaces whose runs it follows (it has a Role in each)
    ...(process.env.GADGET_RUN_NAMESPACES ? { namespaces: process.env.GADGET_RUN_NAMESPACES.split(',').filter(Boolean) } : {}),
    // the DaemonSet sets it (downward API): big results are served through its port-forward
    ...(process.env.POD_NAME ? { pod: process.env.POD_NAME } : {}),
    log: (line) => process.stderr.write(`gadget-run agent [${node}]: ${line}\n`),
  });
}

// ---------------------------------------------------------------------------
// validate

async function validateCommand(inv: Invocation): Promise<number> {
  if (!inv.positionals.length) throw new UsageError('validate takes one or more recipe files', 'validate');
  const limits = await limitsOf(inv.values);
  const inputs = await setsOf(inv.values);
  const [{ validate }, { API_VERSIONS, STDIN_NAME }] = await Promise.all([import('../api/run.ts'), import('../runner/recipe.ts')]);
  let failed = false;
  for (const file of inv.positionals) {
    const result = validate(file, { limits, set: inputs });
    if (!result.ok) {
      await reportRecipeError(new RecipeError(result.problems));
      failed = true;
      continue;
    }
    const { recipe } = result;
    const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
    process.stdout.write(`${file === '-' ? STDIN_NAME : file}: ok (${n(recipe.steps.length, 'step')}${recipe.assertions?.length ? `, ${n(recipe.assertions.length, 'assertion')}` : ''}) — ${recipe.apiVersion ?? `${API_VERSIONS[0]} (the default)`}\n`);
  }
  process.stdout.write(`recipe versions this gadget-run reads: ${API_VERSIONS.join(', ')}\n`);
  return failed ? 2 : 0;
}

// ---------------------------------------------------------------------------
// gadgets

async function gadgetsCommand(inv: Invocation): Promise<number> {
  if (inv.positionals.length > 1) throw new UsageError('gadgets takes at most one gadget id', 'gadgets');
  await useBtfOption(inv.values);
  const api = await import('../api/gadgets.ts');
  const id = inv.positionals[0];
  const objects = inv.values.objects !== undefined ? { objects: inv.values.objects } : {};
  const w = (s: string) => process.stdout.write(s);
  if (id !== undefined) {
    const row = await api.gadget(id, objects);
    if (inv.values.json) w(JSON.stringify(row, null, 2) + '\n');
    else describeGadget((await import('../steps/index.ts')).findGadget(id)!, row, w);
    return 0;
  }
  const rows = await api.gadgets(objects);
  if (inv.values.json) {
    w(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const width = Math.max(...rows.map((r) => r.id.length));
  const pad = ''.padEnd(width);
  for (const r of rows) {
    w(`${r.id.padEnd(width)}  ${r.mode.padEnd(8)}  ${r.supported ? 'ok' : 'unsupported'}  ${r.description}\n`);
    if (r.reason) w(`${pad}  ↳ ${r.reason}\n`);
    if (r.variant) w(`${pad}  hook: ${r.variant}\n`);
    w(`${pad}  fields: ${r.fields.join(', ')}\n`);
    if (r.kernelFilters.length) w(`${pad}  filtered in the kernel (==): ${r.kernelFilters.join(', ')}\n`);
    for (const [name, p] of paramsOf(r.params)) w(`${pad}  params.${name} (${p.type}): ${p.description ?? ''}\n`);
    if (r.missingOptional) w(`${pad}  without: ${r.missingOptional.join(', ')} (not on this kernel)\n`);
    w(`${pad}  liveness: ${r.liveness.provable ? `proven by a canary (${r.liveness.canary.join(', ')})` : `unproven — ${r.liveness.reason}`}\n`);
  }
  const { kernelBtf } = await import('../ebpf/kernel-btf.ts');
  const btf = kernelBtf();
  if (btf && btf.kind !== 'sysfs') w(`\nkernel BTF: ${btf.path} (${btf.kind === 'file' ? btf.from : `the btfgen folder's, for ${btf.release}`})\n`);
  w(`\n(gadget-run gadgets ID for one gadget's fields, types and hooks)\n`);
  return 0;
}

// ---------------------------------------------------------------------------
// btfgen

async function btfgenCommand(inv: Invocation): Promise<number> {
  const files = [...(inv.values['kernel-btf'] ?? []), ...inv.positionals];
  if (!inv.values['kernel-btf']?.length) throw new UsageError('btfgen needs --kernel-btf FILE: the vmlinux BTF of each kernel to write minimized BTF for', 'btfgen');
  const outDir = inv.values.out;
  if (outDir === undefined) throw new UsageError('btfgen needs --out DIR: the folder to write (to ship as btf/ in the package, or to name with GADGET_RUN_BTF_DIR)', 'btfgen');
  const objectDir = inv.values.objects ?? process.env.GADGET_RUN_OBJECTS ?? path.join(ROOT, 'build/bpf');
  const [{ btfgen }, { BtfFileError }] = await Promise.all([import('../ebpf/btfgen.ts'), import('../ebpf/kernel-btf.ts')]);
  let r;
  try {
    r = await btfgen(files, outDir, objectDir);
  } catch (err) {
    if (err instanceof BtfFileError) throw new OptionError(`btfgen: ${err.message}`);
    throw err;
  }
  const w = (s: string) => process.stdout.write(s);
  const width = Math.max(...r.written.map((k) => k.release.length));
  for (const k of r.written) w(`${k.release.padEnd(width)}  ${String(k.bytes).padStart(6)} bytes  ${k.buildId ? `build ${k.buildId.slice(0, 12)}` : 'no build id'}  ← ${k.file}\n`);
  if (r.kept.length) w(`kept from before (the same objects): ${r.kept.join(', ')}\n`);
  if (r.dropped.length) w(`removed (made for other objects): ${r.dropped.join(', ')}\n`);
  w(`${path.join(r.dir, 'index.json')}: ${r.written.length + r.kept.length} kernels, ${r.objects.length} objects\n`);
  if (r.untrusted) process.stderr.write(`gadget-run btfgen: warning: others may write ${r.dir}, so gadget-run will not read it (chmod go-w)\n`);
  return 0;
}

type ParamSchema = { type?: string; description?: string; default?: unknown; enum?: unknown[] };

function paramsOf(params: Record<string, unknown> | undefined): [string, ParamSchema][] {
  return Object.entries((params?.properties ?? {}) as Record<string, ParamSchema>);
}

function describeGadget(def: GadgetDefinition, row: { supported: boolean; reason?: string; missingOptional?: string[]; variant?: string }, w: (s: string) => void): void {
  w(`${def.id} (${def.mode}): ${def.description}\n`);
  w(`support: ${row.supported ? `ok on this machine${row.variant ? `, through ${row.variant}` : ''}` : `unsupported — ${row.reason}`}\n`);
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
  const hook = (r: Requirement, indent: string) => {
    if ('perfEvent' in r) w(`${indent}perf event ${r.perfEvent} (one per CPU)\n`);
    else if ('tracepoint' in r) w(`${indent}tracepoint ${r.tracepoint}${r.optional ? ' (optional)' : ''}${missing.has(r.tracepoint) ? ' — not on this kernel' : ''}\n`);
    else w(`${indent}${requirementName(r)}\n`);
  };
  for (const r of def.requires) hook(r, '  ');
  for (const v of def.variants ?? []) {
    w(`  variant ${v.name}${v.name === row.variant ? ' (used here)' : ''}${v.object ? ` (object ${v.object})` : ''}:\n`);
    for (const r of v.requires) hook(r, '    ');
  }
  w(`\nobject: ${def.object}\n`);
}
