/**
 * The library API's types: what run(), replay(), validate(), gadgets() and stream() take and
 * give. The summary's own shape is src/runner/summary.ts (the contract summary.json keeps).
 */
import type { ContainerSelection } from '../containers/selection.ts';
import type { LoadedRecipe, Limits, Recipe } from '../runner/recipe.ts';
import type { ObservedStep, RunObserver } from '../runner/run.ts';
import type { CanarySummary, Summary } from '../runner/summary.ts';
import type { Problem } from '../runner/errors.ts';
import type { Requirement } from '../steps/types.ts';
import type { ClusterSummary } from '../k8s/cluster-run.ts';

/**
 * A recipe: a path to its YAML file, the recipe as an object (what the YAML would hold: `steps`,
 * or an `egress:` block, which makes its own step), or one load() returned.
 */
export type RecipeInput = string | Recipe | (Omit<Recipe, 'steps' | 'egress'> & { steps?: Recipe['steps']; egress: NonNullable<Recipe['egress']> }) | LoadedRecipe;

/** What a recipe is loaded with: the command line's --set, `-- CMD…` and --limit-* options. */
export interface LoadOptions {
  /** the recipe's inputs, as `--set NAME=VALUE` gives them */
  set?: Record<string, string>;
  /** the workload as an argv, run without a shell, instead of the recipe's `run` (`-- CMD…`) */
  command?: string[];
  /** what the recipe may ask of the machine, in bytes (default: 256 MiB of ring buffers, 4 GiB of events) */
  limits?: Partial<Limits>;
}

/** Where a run's files are, absolute. */
export interface RunPaths {
  /** the output folder */
  out: string;
  summary: string;
  /** report.md */
  report: string;
  /** report.html: one self-contained page */
  html: string;
  /** what was captured (the folder `replay` reads) */
  raw: string;
  /** the JUnit report, when one was asked for */
  junit?: string;
  /** each step's outputs (its `outputs:`), by step id */
  steps: Record<string, string[]>;
}

/** What run() and replay() give: the summary as summary.json holds it, and where the files are. */
export type RunResult = Summary & { paths: RunPaths };

/** What runCluster() gives: the merged verdict with each node's answer (`cluster`), and where the files are. */
export type ClusterRunResult = RunResult & { cluster: ClusterSummary['cluster'] };

/** Which nodes and, on them, which containers a cluster run traces (`run --cluster`'s --node, -n, -p, -c, -l). */
export interface ClusterTarget {
  /** the nodes to run on; default every node */
  nodes?: string[];
  /** only containers of pods in this namespace */
  namespace?: string;
  pod?: string;
  /** the container's name in its pod */
  container?: string;
  /** pod labels, all of which must match */
  labels?: Record<string, string>;
}

export interface ClusterRunOptions extends Pick<LoadOptions, 'limits'> {
  /** where the merged results, each node's folder (out/<node>/), summary.json and the reports go; default out/<recipe name> */
  out?: string;
  cluster?: ClusterTarget;
  /** cap every step's duration on every node: '2s', '1m30s' */
  maxDuration?: string;
  /** a node's gzipped result above this size ('1MiB') is fetched from its agent through its pod's port-forward, not stored in ConfigMaps; default the recipe's cluster.inline_limit, else 1MiB */
  inlineLimit?: string;
  /** the namespace of the GadgetRun and its results (default gadget): the caller's RBAC there decides who reads them; the agents must be deployed for it (deploy --run-namespace) */
  runNamespace?: string;
  junit?: string;
  updateBaseline?: boolean;
  /** aborting cancels the run on every node; what they captured is merged and judged, then runCluster() rejects with InterruptedError */
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** send the merged events where the recipe's `export:` says, one OTLP resource per node (k8s.node.name); default true */
  export?: boolean;
  /** run the recipe's actions here once the merge is judged (default true), as run() does */
  actions?: boolean;
}

/** One step's figures while it captures. */
export interface StepProgress {
  id: string;
  gadget: string;
  /** events so far (after filters) */
  events: number;
  /** events lost in the kernel so far, where reading it is cheap */
  lost?: number;
}

/**
 * What onProgress hears: `attached` once the steps' programs are attached (the workload starts
 * then), `capturing` every progressIntervalMs while they run, `captured` when every step stopped
 * (evaluation follows; run() resolves with its result).
 */
export interface RunProgress {
  phase: 'attached' | 'capturing' | 'captured';
  steps: StepProgress[];
}

export interface RunOptions extends LoadOptions {
  /** the output folder (made when missing, proven writable before anything runs); default out/<recipe name> */
  out?: string;
  /** aborting stops the run as Ctrl-C does: steps detach, what they captured is judged and written, run() rejects with InterruptedError */
  signal?: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
  /** how often onProgress hears `capturing`; default 1000 */
  progressIntervalMs?: number;
  /** who runs the workload: a user name or uid (root only this way); default the recipe's user, else whoever ran sudo, else this process's user */
  user?: string;
  /** cap every step's duration, as recipes write durations: '2s', '1m30s' */
  maxDuration?: string;
  /** the compiled BPF objects; default $GADGET_RUN_OBJECTS, else build/bpf of gadget-run */
  objects?: string;
  /** this kernel's vmlinux BTF (raw BTF or a vmlinux ELF), for a kernel without /sys/kernel/btf/vmlinux; default $GADGET_RUN_BTF. One per process: another file is an OptionError */
  btf?: string;
  /** also write a JUnit XML report to this file */
  junit?: string;
  /** write each step's baseline file from this run's keys instead of failing on new ones */
  updateBaseline?: boolean;
  /** gadget-run's log lines (what the CLI prints on stderr); default: none */
  log?: (line: string) => void;
  /**
   * run the recipe's on_success/on_failure/on_cancel/on_exit actions after the verdict
   * (default true), as `user` when given, else whoever ran sudo, else a non-root owner of
   * the recipe or the current folder; never as root unless `user` says so. Their ends are
   * the result's `actions`
   */
  actions?: boolean;
  /** told when steps attach (with each step's spool, to follow events as they are written) and when capture ends */
  observer?: RunObserver;
  /** send the events where the recipe's `export:` says (OTLP), after the verdict; default true */
  export?: boolean;
  /**
   * own the process as the CLI does: SIGINT/SIGTERM stop the run, a second one (or an error
   * nothing handled) kills the workload and ends the process at once. Default false: only
   * `signal` stops a run, and gadget-run never exits the process
   */
  processSignals?: boolean;
}

export interface ReplayOptions extends Pick<LoadOptions, 'set' | 'limits'> {
  /** the output folder of an earlier run, whose raw/ record is evaluated again */
  from: string;
  /** where outputs, summary.json and report.md go; default: `from` itself */
  out?: string;
  junit?: string;
  updateBaseline?: boolean;
  /** aborting stops the evaluation; replay() rejects with InterruptedError */
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** send the captured events where the recipe's `export:` says (OTLP), after the verdict, as run() does; default true. A replay's actions never run */
  export?: boolean;
}

/** What validate() finds: ok, or every problem, each with its place (file:line:col) and JSON path. */
export type ValidateResult =
  | { ok: true; file: string; recipe: Recipe; problems: [] }
  | { ok: false; file: string; problems: Problem[] };

/** A gadget as `gadget-run gadgets --json` lists it. */
export interface GadgetInfo {
  id: string;
  mode: string;
  /** its hooks exist and its object loads and verifies on this kernel */
  supported: boolean;
  /** the way of hooking it this kernel takes, when the gadget has several (e.g. 'tracepoint capability/cap_capable') */
  variant?: string;
  /** why not, in one line */
  reason?: string;
  /** why not, as data */
  why?: { kind: string; hook: string; reason: string; hint?: string };
  /** optional hooks this kernel lacks (the gadget runs without them) */
  missingOptional?: string[];
  description: string;
  fields: string[];
  /** fields whose == filter runs in the kernel */
  kernelFilters: string[];
  /** JSON Schema of its params */
  params?: Record<string, unknown>;
  /**
   * whether a step of it can prove it hears its scope before the workload (a liveness
   * canary: recipe key liveness): the canary's actions, or why its liveness stays unproven
   */
  liveness: { provable: true; canary: string[] } | { provable: false; reason: string };
}

/** A field as `gadget-run gadgets ID --json` describes it. */
export interface GadgetField {
  name: string;
  type: string;
  description: string;
  /** names a filter may use for a number field's values (signal==SIGKILL) */
  names?: string[];
}

/** One gadget as `gadget-run gadgets ID --json` shows it: its fields typed and its hooks. */
export type GadgetDetail = Omit<GadgetInfo, 'fields'> & {
  fields: GadgetField[];
  /** what every way of hooking it needs */
  requires: Requirement[];
  /** its ways of hooking, in order of preference, when it has several */
  variants?: { name: string; requires: Requirement[] }[];
};

export interface GadgetsOptions {
  /** the compiled BPF objects the load probe uses; default as run() */
  objects?: string;
  /** this kernel's vmlinux BTF (raw BTF or a vmlinux ELF), for a kernel without /sys/kernel/btf/vmlinux; default $GADGET_RUN_BTF. as run() */
  btf?: string;
}

/** A decoded event: the gadget's fields (`gadget-run gadgets ID`), by name. */
export type GadgetEvent = Record<string, unknown>;

export interface StreamOptions {
  /** Inspektor Gadget filter: `field==value`, `!=`, `>=`, `>`, `<=`, `<`, `~regex`, `!~regex`; comma = AND */
  filter?: string;
  /** the gadget's params */
  params?: Record<string, unknown>;
  /** only these containers' events (a recipe's `containers:` selection) */
  containers?: ContainerSelection;
  /** aborting ends the iteration: the events already queued are still delivered, then it is done */
  signal?: AbortSignal;
  /** most events held for a consumer that has not taken them yet (default 10 000); later ones are counted in `dropped` */
  queue?: number;
  /** the ring buffer, a power of two: '16MiB' (the default), '1MiB' */
  buffer?: string;
  /** interval gadgets (top/*): each interval's rows come at its end, with `interval` 1, 2, …; how often ('1s', the default) */
  interval?: string;
  /** interval gadgets: which rows first ('-rbytes,-wbytes'; default the gadget's) */
  sort?: string;
  /** interval gadgets: rows per interval, the first by sort (default 20) */
  maxRows?: number;
  /** the compiled BPF objects; default as run() */
  objects?: string;
  /** this kernel's vmlinux BTF (raw BTF or a vmlinux ELF), for a kernel without /sys/kernel/btf/vmlinux; default $GADGET_RUN_BTF. as run() */
  btf?: string;
  /**
   * The liveness canary (a recipe's `liveness`, docs/recipes.md "Liveness"): before `ready` resolves,
   * the gadget's canary runs on the node and its event must come back through the ring and the
   * decoder (it is never delivered). checked (default): a canary that does not come rejects `ready`
   * with CouldNotTraceError; proven: a gadget without a canary is an error too; off: no canary.
   */
  liveness?: 'checked' | 'proven' | 'off';
  /** how long the canary may take: ms, or a duration ('1s'); default 500 ms */
  canaryBudget?: number | string;
}

/** A stream's figures: readable at any time from stats(), and the value a finished iteration returns. */
export interface StreamStats {
  /** events that passed the filter */
  events: number;
  /** events the consumer took */
  delivered: number;
  /** events that found the queue full (the consumer was slower than the events) */
  dropped: number;
  /** events lost in the kernel (its ring buffer was full) */
  lost: number;
  /** events waiting for the consumer now */
  queued: number;
  /** the most that ever waited (never more than `limit`) */
  maxQueued: number;
  /** the queue's bound (StreamOptions.queue) */
  limit: number;
}

/**
 * A gadget's events as they happen. Iterate it with `for await`; leaving the loop (break,
 * return, a throw), close() or the abort signal detach the programs and free the kernel
 * objects. Memory stays bounded: at most `queue` events wait; the rest are counted as dropped.
 */
export interface EventStream<E = GadgetEvent> extends AsyncIterableIterator<E, StreamStats> {
  /** resolves once the programs are attached (events from then on are seen); rejects as the first next() would */
  readonly ready: Promise<void>;
  /** once `ready`: what the liveness canary proved (as summary.json's steps[].canary), or undefined before */
  canary(): CanarySummary | undefined;
  stats(): StreamStats;
  /** detach and free everything now (what is still queued is dropped); the same as return() */
  close(): Promise<StreamStats>;
  next(): Promise<IteratorResult<E, StreamStats>>;
  return(): Promise<IteratorResult<E, StreamStats>>;
}

export type { ObservedStep, RunObserver };
