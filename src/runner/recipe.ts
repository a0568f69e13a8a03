/**
 * Recipes: YAML parsed with positions, validated with ajv against
 * schemas/recipe.schema.json, then checked against the gadget registry
 * (gadget ids, filter fields, params, JSONata syntax). Every problem names
 * file:line:col and the JSON path, so nothing runs from a bad recipe.
 */
import fs from 'node:fs';
import type { ErrorObject } from 'ajv';
import { jsonata } from '../deferred.ts';
import { isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { gadgets } from '../steps/index.ts';
import { modeOf, modeOptionKeys, modes, type Mode } from '../steps/modes/index.ts';
import type { GadgetDefinition, KernelMemory } from '../steps/types.ts';
import { livenessOf } from '../steps/liveness.ts';
import { excerpt, formatBytes, parseDuration, parseSize } from '../steps/duration.ts';
import { formatOf, formatsFor } from './formats.ts';
import { resolveInputs, substituteInputs, type InputSpec } from './inputs.ts';
import { paramValidator, recipeValidator } from './validators.ts';
import { checkFilter, parseFilter, FilterError, type Predicate } from '../steps/filter.ts';
import type { ContainerInfo } from '../containers/enrichment.ts';
import { containerFields } from '../containers/table.ts';
import { SELECTION_KEYS, type ContainerScope, type ContainerSelection } from '../containers/selection.ts';
import { isRootUser } from './workload.ts';
import { transformShape, unknownFunctions, unknownReferences, type ExprIssue, type Shapes } from './expr-check.ts';
import type { Node as ExprNode } from './references.ts';
import { compileRedactor } from './redact.ts';
import { checkBaselinePath } from './baseline.ts';
import { checkProfilePath, type SeccompSpec } from './seccomp.ts';
import { planEgress, type EgressSpec } from './egress.ts';
import { RecipeError, type Place, type Problem } from './errors.ts';
import { planTriggers, type IfNotTriggered, type TriggerPlan, type TriggerSpec } from './trigger-plan.ts';
import { checkActions, recipeDirOf, type ActionSpec } from './actions.ts';
import type { OtlpSpec } from './otlp.ts';
import { jsonPath, nodeOffset } from './yaml-place.ts';

export { jsonPath };


/** cluster.max_result_bytes below this leaves no room for events (src/k8s/results.ts) */
const MIN_RESULT_BYTES = 1024 * 1024;

export type Duration = number | string;

export interface StepSpec {
  id: string;
  gadget: string;
  description?: string;
  filter?: string;
  duration?: Duration;
  max_bytes?: string;
  /** the keys of the gadget's mode: buffer (stream), delay (snapshot), interval, sort, max_rows, totals (interval), ... */
  [modeKey: string]: unknown;
  params?: Record<string, unknown>;
  transform?: string;
  outputs?: string[];
  optional?: boolean;
  /** this step's container selection (replaces the recipe's) */
  containers?: ContainersSpec;
  /** events lost in the kernel that do not fail the run (default false: none) */
  allow_lost?: AllowLost;
  /** fail on keys not in a committed baseline */
  baseline?: { file: string; key?: string };
  /** start when another step sees a matching event (trigger-plan.ts) */
  start_on?: TriggerSpec;
  /** stop when another step sees a matching event */
  stop_on?: TriggerSpec;
  for_each?: string;
  max_instances?: number;
  scope?: 'trigger' | Record<string, string>;
  if_not_triggered?: IfNotTriggered;
  attach?: 'lazy' | 'preload';
  /** the step's liveness canary (default: the recipe's, else checked) */
  liveness?: Liveness;
  /** how long its canary may take to come back (default: the recipe's, else 500 ms) */
  canary_budget?: Duration;
}

/** checked: prove the step hears its scope where its gadget has a canary; proven: and refuse a gadget without one; off: no canary */
export type Liveness = 'checked' | 'proven' | 'off';

/** `containers:` as written: a selection (src/containers/selection.ts) plus the workload option. */
export type ContainersSpec = ContainerSelection & { workload?: boolean };

export type AllowLost = boolean | number;
/** the workload exit codes that pass */
export type ExpectExit = number | number[] | 'any';

export interface Recipe {
  /** the recipe format; absent means gadget-run/v1 */
  apiVersion?: string;
  name: string;
  /** values the command line sets with --set name=value, used as ${{ inputs.name }} */
  inputs?: Record<string, InputSpec>;
  description?: string;
  run?: string;
  timeout?: Duration;
  /** how long a stopped workload has between SIGTERM and SIGKILL (default 10s) */
  grace?: Duration;
  /** a non-root user (name or uid) to run the workload as */
  user?: string | number;
  /** run the workload under this seccomp profile (src/runner/seccomp.ts) */
  seccomp?: SeccompSpec;
  duration?: Duration;
  expect_exit?: ExpectExit;
  allow_lost?: AllowLost;
  /** RE2 patterns masked in every artifact, on top of the defaults */
  redact?: string[];
  sequential?: boolean;
  /** an allow-list for the workload's egress, enforced in the kernel (src/runner/egress.ts) */
  egress?: EgressSpec;
  max_bytes?: string;
  /** a JUnit XML report, a plain file name inside --out */
  junit?: string;
  /** time budget of each transform and assertion (JSONata, sandboxed); default 10s */
  eval_timeout?: Duration;
  /** heap of the JSONata sandbox, e.g. 512MiB (the default) */
  eval_memory?: string;
  /** the containers every step watches, unless a step has its own */
  containers?: ContainersSpec;
  /** every step's liveness canary, unless a step has its own (default checked) */
  liveness?: Liveness;
  /** how long a step's canary may take to come back (default 500 ms) */
  canary_budget?: Duration;
  steps: StepSpec[];
  /** run --cluster: see src/k8s/cluster-run.ts */
  cluster?: { allow_missing_nodes?: boolean; attach_timeout?: Duration; max_result_bytes?: string; inline_limit?: string; ttl?: Duration };
  assertions?: { name: string; expr: string; message?: string }[];
  /** actions run after the verdict (src/runner/actions.ts) */
  on_success?: ActionSpec[];
  on_failure?: ActionSpec[];
  on_cancel?: ActionSpec[];
  on_exit?: ActionSpec[];
  /** where the run's events go besides its folder (src/runner/otlp.ts) */
  export?: { otlp?: OtlpSpec };
}

/** A step checked against its gadget, ready to plan. */
export interface PlannedStep {
  spec: StepSpec;
  def: GadgetDefinition;
  filter: Predicate[];
  durationMs?: number;
  /** the step's mode keys as written (the mode plans them again when it opens the step) */
  options: Record<string, unknown>;
  /** kernel buffer bytes the step takes (the mode's ringBytes and the gadget's kernelMemory), counted against --limit-ring */
  ringBytes: number;
  /** the maps the step's params size (def.kernelMemory), when the gadget has such */
  kernelMemory?: KernelMemory;
  /** most bytes of events the step may write */
  maxBytes: number;
  /** the step's container scope; none without `run` or `containers:` */
  containers?: ContainerScope;
  /** a `selects: 'documents'` gadget's selection: capture is node-wide, documents are generated for these containers only */
  documents?: ContainerSelection;
  /** start_on / stop_on and their keys, checked (trigger-plan.ts) */
  trigger?: TriggerPlan;
}

export interface Position {
  line: number;
  col: number;
}

export interface LoadedRecipe {
  file: string;
  recipe: Recipe;
  steps: PlannedStep[];
  /** where each step and assertion starts in the file, for annotations that point at it */
  positions: { steps: Position[]; assertions: Position[] };
  /** the workload's argv from the command line (`-- CMD…`), run without a shell; overrides recipe.run */
  argv?: string[];
  /** environment the workload gets on top of gadget-run's: the inputs its `run` references */
  env?: Record<string, string>;
}

/** What the command line adds to a recipe file. */
export interface LoadOptions {
  /** --set name=value */
  inputs?: Record<string, string>;
  /** `-- CMD…`: the workload, overriding `run` */
  argv?: string[];
}

/** The recipe formats this build reads; `apiVersion` names one (absent: the first). */
export const API_VERSIONS = ['gadget-run/v1'] as const;

// the typed errors live in a light module the CLI and the API entry load at start
export { RecipeError, type Place, type Problem } from './errors.ts';

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/**
 * What a recipe may ask of the machine, set by whoever runs gadget-run (the
 * command line), never by the recipe: a recipe from a pull request runs as root.
 */
export interface Limits {
  /** all steps' ring buffers together */
  ringBytes: number;
  /** all steps' max_bytes together */
  outputBytes: number;
}
export const DEFAULT_LIMITS: Limits = { ringBytes: 256 * 1024 * 1024, outputBytes: 4 * 1024 * 1024 * 1024 };

/** Larger recipes are refused before parsing: YAML parsing of tens of MB takes GBs of memory. */
export const MAX_RECIPE_BYTES = 1024 * 1024;

/** Names the runner writes itself; an output may not take them. */
export const RESERVED_OUTPUTS = ['summary.json', 'report.md'];

export type Registry = Record<string, GadgetDefinition>;

/** The name a recipe read from stdin (`run -`) goes by in messages. */
export const STDIN_NAME = '<stdin>';

/** Load a recipe file, or stdin when `file` is "-". */
export function loadRecipeFile(file: string, registry: Registry = gadgets, limits: Limits = DEFAULT_LIMITS, opts: LoadOptions = {}): LoadedRecipe {
  if (file === '-') file = STDIN_NAME;
  let text: string;
  try {
    text = readBounded(file);
  } catch (err) {
    if (err instanceof RecipeError) throw err;
    throw new RecipeError([{ where: file, path: '', message: `cannot read the recipe: ${(err as Error).message}` }]);
  }
  return parseRecipe(text, file, registry, limits, opts);
}

/** The file's text, refusing more than MAX_RECIPE_BYTES without reading it all (it may be a pipe). */
function readBounded(file: string): string {
  const stdin = file === STDIN_NAME;
  const fd = stdin ? 0 : fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_RECIPE_BYTES + 1);
    let used = 0;
    for (let n; used < buf.length && (n = readSome(fd, buf, used)) > 0; ) used += n;
    if (used > MAX_RECIPE_BYTES) throw tooLarge(file);
    return buf.toString('utf8', 0, used);
  } finally {
    if (!stdin) fs.closeSync(fd);
  }
}

/**
 * readSync that waits on EAGAIN: stdin may be a non-blocking pipe or a socket
 * (Node's child stdio), which /dev/stdin cannot reopen (ENXIO).
 */
function readSome(fd: number, buf: Buffer, offset: number): number {
  for (;;) {
    try {
      return fs.readSync(fd, buf, offset, buf.length - offset, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

function tooLarge(file: string): RecipeError {
  return new RecipeError([{ where: file, path: '', message: `the recipe is larger than ${formatBytes(MAX_RECIPE_BYTES)}; recipes are small YAML files` }]);
}

export function parseRecipe(text: string, file: string, registry: Registry = gadgets, limits: Limits = DEFAULT_LIMITS, opts: LoadOptions = {}): LoadedRecipe {
  if (Buffer.byteLength(text) > MAX_RECIPE_BYTES) throw tooLarge(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): Place => {
    const { line, col } = lines.linePos(offset);
    return { where: `${file}:${line}:${col}`, file, line, col };
  };
  if (doc.errors.length) {
    throw new RecipeError(doc.errors.map((e) => ({ ...at(e.pos[0]), path: '', message: `YAML: ${excerpt(e.message.split('\n')[0], 200)}` })));
  }
  let data: unknown;
  try {
    // anchors and aliases are YAML's; a billion-laughs recipe stops at the alias count
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new RecipeError([{ ...at(0), path: '', message: `YAML: ${excerpt((err as Error).message, 200)}` }]);
  }
  const locate = (path: (string | number)[], key = false) => at(nodeOffset(doc, path, key));
  const problems: Problem[] = [];
  const problem: ProblemFn = (path, message, offsetInValue, key) => {
    const place = offsetInValue === undefined ? locate(path, key) : at(nodeOffset(doc, path) + offsetInValue);
    problems.push({ ...place, path: jsonPath(path), message });
  };

  // a newer format may have keys this build does not know: say that, not what each key is
  const version = (data as { apiVersion?: unknown } | null)?.apiVersion;
  if (version !== undefined && !API_VERSIONS.includes(version as (typeof API_VERSIONS)[number])) {
    problem(['apiVersion'], `apiVersion ${excerpt(String(JSON.stringify(version)))} is not a version this gadget-run reads (it reads: ${API_VERSIONS.join(', ')}); upgrade gadget-run or write apiVersion: ${API_VERSIONS[0]}`);
    throw new RecipeError(problems);
  }
  const env = applyInputs(data, opts, problem);
  // a value that could not be substituted would only add the schema's complaints about "${{ … }}"
  if (problems.length) throw new RecipeError(problems);
  if (opts.argv?.length && data && typeof data === 'object') (data as Recipe).run = opts.argv.map(shellQuote).join(' ');

  const validateRecipe = recipeValidator();
  // the schema's problems, then the registry's on every step the schema accepted: one pass finds them all
  const rejected = new Set<string>();
  if (!validateRecipe(data)) {
    const errors = validateRecipe.errors ?? [];
    problems.push(...schemaProblems(errors, locate));
    for (const e of errors) rejected.add(e.instancePath.split('/').slice(0, 3).join('/'));
    const egressOnly = (data as Recipe | null)?.egress !== undefined && (data as Recipe).steps === undefined;
    if ((!Array.isArray((data as Recipe | null)?.steps) && !egressOnly) || errors.some((e) => e.instancePath === '' && e.keyword !== 'additionalProperties')) {
      throw new RecipeError(problems);
    }
  }
  const recipe = data as unknown as Recipe;
  // the egress block is a step of its own: a recipe with only it has no steps list
  recipe.steps ??= [];
  const accepted = (list: string, i: number) => !rejected.has(`/${list}/${i}`);
  // steps inherit recipe-level defaults (max_bytes, duration): check them against the ones the schema accepted
  const defaults = { ...recipe } as Record<string, unknown>;
  for (const r of rejected) if (r.split('/').length === 2) delete defaults[r.slice(1)];
  const inExpr: ExprProblemFn = (path, expr, issue) => {
    problems.push({ ...at(exprOffset(doc, text, path, expr, issue.at)), path: jsonPath(path), message: issue.message });
  };
  if (recipe.egress && ![...rejected].some((r) => r === '/egress' || r.startsWith('/egress/'))) {
    const planned = planEgress(recipe.egress, { recipeFile: file, hasRun: recipe.run !== undefined, stepIds: recipe.steps.map((s) => s?.id) }, problem);
    if (planned) {
      recipe.steps.push(planned.step as StepSpec);
      if (planned.assertion) (recipe.assertions ??= []).push(planned.assertion);
    }
  }
  const shapes: Shapes = new Map();
  const steps = recipe.steps
    .map((spec, i) => (accepted('steps', i) ? checkStep(spec, i, defaults as unknown as Recipe, doc, problem, inExpr, registry, shapes) : undefined))
    .filter((s): s is PlannedStep => !!s);

  const known = recipe.steps.map((s) => s?.id).filter((id): id is string => typeof id === 'string');
  const triggers = planTriggers(
    steps.map((s) => ({ spec: s.spec, index: recipe.steps.indexOf(s.spec), def: s.def })),
    known,
    (path, message, offset) => problem(path, message, offset),
    (path) => filterQuoteOffset(doc, path),
    recipe.sequential === true,
  );
  for (const s of steps) {
    const plan = triggers.get(s.spec.id);
    if (plan) s.trigger = plan;
  }

  const maxResult = recipe.cluster?.max_result_bytes;
  if (maxResult && !rejected.has('/cluster/max_result_bytes') && parseSize(maxResult) < MIN_RESULT_BYTES) {
    problem(['cluster', 'max_result_bytes'], `${maxResult} cannot hold a node's metas and container table with any events: give at least 1MiB`);
  }

  const ids = new Set<string>();
  const outputs = new Map<string, string>();
  recipe.steps.forEach((s, i) => {
    if (!accepted('steps', i)) return;
    if (ids.has(s.id)) problem(['steps', i, 'id'], `duplicate step id "${s.id}" (ids name results and must be unique)`);
    ids.add(s.id);
    s.outputs?.forEach((o, j) => {
      const owner = RESERVED_OUTPUTS.includes(o) || o === recipe.junit ? 'gadget-run itself' : outputs.get(o);
      if (owner) problem(['steps', i, 'outputs', j], `"${o}" is already written by ${owner}; give each output its own name`);
      outputs.set(o, `step ${s.id}`);
    });
  });
  for (const key of ['timeout', 'duration'] as const) {
    if (recipe[key] !== undefined && !rejected.has(`/${key}`)) checkDuration(recipe[key], [key], problem);
  }
  checkTotals(steps, recipe, limits, problem);
  // a step the schema or the registry rejected is already a problem: its id still names a step
  for (const spec of recipe.steps) if (typeof spec?.id === 'string' && !shapes.has(spec.id)) shapes.set(spec.id, undefined);
  if (Array.isArray(recipe.assertions)) {
    recipe.assertions.forEach((a, i) => {
      if (!accepted('assertions', i)) return;
      const path = ['assertions', i, 'expr'];
      const ast = checkJsonata(a.expr, path, problem, inExpr);
      if (ast) for (const issue of unknownReferences(ast, shapes)) inExpr(path, a.expr, issue);
    });
  }
  if (Array.isArray(recipe.redact)) {
    recipe.redact.forEach((pattern, i) => {
      if (typeof pattern !== 'string') return;
      try {
        compileRedactor([pattern]);
      } catch (err) {
        problem(['redact', i], (err as Error).message);
      }
    });
  }
  for (const key of ['user', 'grace', 'seccomp'] as const) {
    if (recipe[key] !== undefined && recipe.run === undefined) problem([key], `${key} is about the workload: give the recipe a run command or drop ${key}`);
  }
  if (recipe.seccomp && !rejected.has('/seccomp')) checkSeccomp(recipe, problem);
  if (recipe.user !== undefined && !rejected.has('/user') && isRootUser(recipe.user)) {
    problem(['user'], `a recipe may not run its workload as root ("${recipe.user}"): name a non-root user, or pass --user root on the command line`);
  }
  // a script is relative to the recipe (a recipe from stdin or an object: to the current folder)
  checkActions(recipe, recipeDirOf(file), (p, message) => problem(p, message));
  const otlpSteps = recipe.export?.otlp?.steps;
  if (Array.isArray(otlpSteps) && !rejected.has('/export/otlp')) {
    otlpSteps.forEach((id, j) => {
      if (!recipe.steps.some((st) => st?.id === id)) problem(['export', 'otlp', 'steps', j], `no step "${excerpt(String(id))}" in this recipe (steps: ${recipe.steps.map((st) => st?.id).join(', ')})`);
    });
  }
  if (problems.length) throw new RecipeError(problems);
  const position = (path: (string | number)[]): Position => lines.linePos(nodeOffset(doc, path));
  const positions = {
    steps: recipe.steps.map((_, i) => position(['steps', i])),
    assertions: (recipe.assertions ?? []).map((_, i) => position(['assertions', i])),
  };
  return { file, recipe, steps, positions, ...(opts.argv?.length ? { argv: opts.argv } : {}), ...(Object.keys(env).length ? { env } : {}) };
}

/**
 * `seccomp:` on its face (the profile itself is read when the run starts:
 * loadSeccompProfile). Log mode lets every syscall through: only an
 * audit/seccomp step can tell the run about the ones outside the profile.
 */
function checkSeccomp(recipe: Recipe, problem: ProblemFn): void {
  // a profile the schema rejected (not a string) is already a problem
  const why = typeof recipe.seccomp!.profile === 'string' ? checkProfilePath(recipe.seccomp!.profile) : undefined;
  if (why) problem(['seccomp', 'profile'], why);
  const audited = Array.isArray(recipe.steps) && recipe.steps.some((s) => s?.gadget === 'audit/seccomp' && !s.optional);
  if (recipe.seccomp!.mode === 'log' && !audited) {
    problem(['seccomp', 'mode'], 'log mode lets the syscalls outside the profile through: add a (non-optional) audit/seccomp step that reports them and assert it has none ($count(steps.ID) = 0), or use mode: errno');
  }
}

/** Resolve the recipe's inputs (--set, defaults) and substitute them into its values; the workload's environment. */
function applyInputs(data: unknown, opts: LoadOptions, problem: ProblemFn): Record<string, string> {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return {};
  const raw = (data as { inputs?: unknown }).inputs;
  // a malformed inputs block is the schema's to report; substitute nothing from it
  const declared = raw && typeof raw === 'object' && !Array.isArray(raw) && Object.values(raw).every((s) => s && typeof s === 'object' && typeof (s as InputSpec).type === 'string')
    ? (raw as Record<string, InputSpec>)
    : undefined;
  const { values, problems } = resolveInputs(declared, opts.inputs ?? {});
  for (const p of problems) problem(p.path, p.message, undefined, p.path.length <= 2);
  return substituteInputs(data as Record<string, unknown>, values, Object.keys(declared ?? {}), (path, message) => problem(path, message));
}

/** An argv word as POSIX shell text, for showing a command-line workload (it never runs through a shell). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** One problem is one line: control characters a recipe put in a value are shown escaped (\\n, \\u0000). */
type ProblemFn = (path: (string | number)[], message: string, offsetInValue?: number, key?: boolean) => void;

function checkStep(spec: StepSpec, i: number, recipe: Recipe, doc: Document, problem: ProblemFn, inExpr: ExprProblemFn, registry: Registry, shapes: Shapes): PlannedStep | undefined {
  const def = Object.hasOwn(registry, spec.gadget) ? registry[spec.gadget] : undefined;
  if (!def) {
    problem(['steps', i, 'gadget'], `unknown gadget "${excerpt(spec.gadget)}" (known: ${Object.keys(registry).join(', ')})`);
    return undefined;
  }
  if ((spec.liveness ?? recipe.liveness) === 'proven') {
    const l = livenessOf(def, spec.params ?? {});
    if ('unproven' in l) problem(['steps', i, spec.liveness ? 'liveness' : 'gadget'], `liveness: proven, but ${def.id}'s liveness cannot be proven: ${l.unproven} (use liveness: checked or off for this step)`);
  }
  let filter: Predicate[] = [];
  if (spec.filter !== undefined) {
    const quote = filterQuoteOffset(doc, ['steps', i, 'filter']);
    try {
      filter = parseFilter(spec.filter);
      const err = checkFilter(filter, def.fields);
      if (err) throw err;
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      problem(['steps', i, 'filter'], err.message, quote + err.column);
    }
  }
  let paramsValid = !spec.params || Object.keys(spec.params).length === 0;
  if (def.params) {
    const validate = paramValidator(def.id, def.params);
    paramsValid = validate(spec.params ?? {});
    if (!paramsValid) {
      for (const e of validate.errors ?? []) {
        const sub = e.instancePath.split('/').filter(Boolean);
        if (e.keyword === 'additionalProperties') {
          const extra = (e.params as { additionalProperty: string }).additionalProperty;
          const known = Object.keys((def.params.properties as object) ?? {}).join(', ');
          problem(['steps', i, 'params', ...sub, extra], `unknown parameter "${extra}" of ${def.id} (known: ${known})`, undefined, true);
        } else if (e.keyword === 'enum') {
          // say which values are allowed, not only that there are some
          const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ');
          problem(['steps', i, 'params', ...sub], `must be one of ${allowed}`);
        } else {
          problem(['steps', i, 'params', ...sub], e.message ?? 'is invalid');
        }
      }
    }
  } else if (spec.params && Object.keys(spec.params).length) {
    problem(['steps', i, 'params'], `${def.id} takes no params`);
  }
  spec.outputs?.forEach((o, j) => {
    // the schema knows every format some gadget writes; which ones this gadget writes is its definition's
    const formats = formatsFor(def.outputs);
    if (!formats.includes(formatOf(o))) problem(['steps', i, 'outputs', j], `.${formatOf(o)} is not a format ${def.id} writes (write ${formats.map((f) => `.${f}`).join(', ')})`);
  });
  let shape: readonly string[] | undefined = eventFields(def, spec.params);
  if (spec.transform !== undefined) {
    const ast = checkJsonata(spec.transform, ['steps', i, 'transform'], problem, inExpr);
    shape = ast && transformShape(ast);
  }
  if (!shapes.has(spec.id)) shapes.set(spec.id, shape);
  if (spec.baseline) {
    const why = checkBaselinePath(spec.baseline.file);
    if (why) problem(['steps', i, 'baseline', 'file'], why);
    else if (spec.baseline.file.endsWith('.folded')) {
      const profiled = spec.transform === undefined && ['stack', 'count'].every((f) => def.fields.some((d) => d.name === f));
      if (!profiled) problem(['steps', i, 'baseline', 'file'], `a .folded baseline is a profile's: ${def.id}${spec.transform === undefined ? '' : ' with a transform'} has no rows with stack and count (use a .json baseline with a key)`);
      if (spec.baseline.key !== undefined) problem(['steps', i, 'baseline', 'key'], 'a .folded baseline compares stacks and takes no key');
    } else if (spec.baseline.key === undefined) {
      problem(['steps', i, 'baseline'], 'a .json baseline needs key: a JSONata expression per record (e.g. key: args[0])');
    } else {
      checkJsonata(spec.baseline.key, ['steps', i, 'baseline', 'key'], problem, inExpr);
    }
  }

  if (spec.duration !== undefined) checkDuration(spec.duration, ['steps', i, 'duration'], problem);
  const mode = modeOf(def);
  const duration = spec.duration ?? recipe.duration;
  if (mode?.untilStopped && duration === undefined && recipe.run === undefined) {
    problem(['steps', i], `${def.id} runs until stopped (${def.mode} mode): give the step a duration (e.g. duration: 30s) or the recipe a run command`);
  }
  const options: Record<string, unknown> = {};
  for (const [key, owners] of modeOptionKeys()) {
    if (spec[key] === undefined) continue;
    if (owners.includes(def.mode)) options[key] = spec[key];
    else problem(['steps', i, key], `${key} is for ${owners.join(' and ')} gadgets; ${def.id} is a ${def.mode} gadget`);
  }
  const planned = mode?.plan(options, def, (key, message) => problem(['steps', i, key], message));
  const maxBytes = parseSize(spec.max_bytes ?? recipe.max_bytes ?? `${DEFAULT_MAX_BYTES / 1024 ** 2}MiB`);
  let containers = containerScope(spec.containers ?? recipe.containers, recipe.run !== undefined);
  let documents: ContainerSelection | undefined;
  if (def.selects === 'workload') {
    // the run itself: the workload and every container it starts, whatever the recipe's `containers:` watches
    if (spec.containers) problem(['steps', i, 'containers'], `${def.id} acts on the workload and every container it starts; remove containers: from this step`);
    containers = recipe.run === undefined ? undefined : { workload: true };
  } else if (def.selects === 'none' && containers?.selection) {
    // the recipe's own `containers:` covers every step, this one as node-wide as it is
    if (spec.containers && SELECTION_KEYS.some((k) => spec.containers?.[k] !== undefined)) {
      problem(['steps', i, 'containers'], `${def.id} is node-wide and cannot be narrowed to containers; remove the selection from this step`);
    }
    containers = undefined;
  } else if (def.selects === 'documents' && containers?.selection) {
    // peers are known by their own cgroups: the node is recorded, the documents are the selection's
    documents = containers.selection;
    containers = undefined;
  }
  // sized from params the schema accepted only (a bad one is already a problem)
  const kernelMemory = paramsValid ? def.kernelMemory?.(spec.params ?? {}) : undefined;
  return {
    ...(kernelMemory ? { kernelMemory } : {}),
    ...(containers ? { containers } : {}),
    ...(documents ? { documents } : {}),
    spec,
    def,
    filter,
    durationMs: duration === undefined ? undefined : durationOrZero(duration),
    options,
    ringBytes: (mode?.ringBytes?.(planned) ?? 0) + (kernelMemory?.bytes ?? 0),
    maxBytes,
  };
}

/**
 * A step's container scope: the selection written (keys that select), and
 * whether the workload's own containers count (on by default with `run`,
 * and only when nothing is selected: a selection names what to watch).
 */
function containerScope(spec: ContainersSpec | undefined, hasRun: boolean): ContainerScope | undefined {
  const selection: ContainerSelection = {};
  for (const k of SELECTION_KEYS) if (spec?.[k] !== undefined) (selection as Record<string, unknown>)[k] = spec[k];
  const selects = Object.keys(selection).length > 0;
  const workload = hasRun && !selects && spec?.workload !== false;
  if (!selects && !workload) return undefined;
  return { ...(selects ? { selection } : {}), workload };
}

/** Every container could add all of them, so all are known. */
const CONTAINER_FIELDS = Object.keys(containerFields({ id: '', runtime: '', k8s: { node: '', namespace: '', pod: '', container: '', labels: {}, owner: {} } } as unknown as ContainerInfo));

/** The fields a step's untransformed events may have: the gadget's, and those evaluation joins in from the container table. */
function eventFields(def: GadgetDefinition, params: Record<string, unknown> | undefined): string[] {
  // an advise step's records are its generated documents
  if (def.advise) return def.advise.fields(params ?? {});
  const own = def.fields.map((f) => f.name);
  return own.includes('cgroup_id') ? [...own, ...CONTAINER_FIELDS.filter((f) => !own.includes(f))] : own;
}

/** A duration already reported by checkDuration when bad; planning goes on so every problem is found. */
function durationOrZero(value: Duration): number {
  try {
    return parseDuration(value);
  } catch {
    return 0;
  }
}

/** The schema checks the shape; this checks the range (NaN and 0 pass JSON Schema), with the bad value. */
function checkDuration(value: Duration, path: (string | number)[], problem: ProblemFn): void {
  try {
    parseDuration(value);
  } catch (err) {
    problem(path, (err as Error).message);
  }
}

/**
 * A recipe may not ask for more ring memory or output bytes than the command
 * line allows. Steps without their own max_bytes share what the others leave
 * (at most 256MiB each), so many small steps stay valid by default.
 */
function checkTotals(steps: PlannedStep[], recipe: Recipe, limits: Limits, problem: ProblemFn): void {
  const ring = steps.reduce((n, s) => n + s.ringBytes, 0);
  if (ring > limits.ringBytes) {
    const sized = steps.filter((s) => s.kernelMemory);
    problem(['steps'], `the steps' ring buffers${sized.length ? ' and kernel maps' : ''} take ${formatBytes(ring)} together; the limit is ${formatBytes(limits.ringBytes)} (give steps a smaller buffer${sized.length ? ' or smaller maps' : ''}, or raise the limit with --limit-ring)`);
    // a step whose params size kernel maps (traceloop's slots) is named where its params are, with the sizes to lower
    for (const s of sized) {
      const m = s.kernelMemory!;
      problem(['steps', recipe.steps.indexOf(s.spec), 'params'], `step ${s.spec.id} (${s.def.id}) takes ${formatBytes(s.ringBytes)} of them, ${formatBytes(m.bytes)} for ${m.what}; lower ${m.lower}`);
    }
  }
  const explicit = steps.filter((s) => (s.spec.max_bytes ?? recipe.max_bytes) !== undefined);
  const asked = explicit.reduce((n, s) => n + s.maxBytes, 0);
  if (asked > limits.outputBytes) {
    problem(['steps'], `the steps may write ${formatBytes(asked)} together (max_bytes); the limit is ${formatBytes(limits.outputBytes)} (lower max_bytes, or raise the limit with --limit-output)`);
    return;
  }
  const rest = steps.filter((s) => !explicit.includes(s));
  const share = Math.floor((limits.outputBytes - asked) / Math.max(rest.length, 1));
  for (const s of rest) s.maxBytes = Math.min(s.maxBytes, share);
}

/** The expression's syntax tree, or undefined (and a problem) when it does not parse. */
function checkJsonata(expr: string, path: (string | number)[], problem: ProblemFn, inExpr: ExprProblemFn): ExprNode | undefined {
  let ast: ExprNode;
  try {
    ast = jsonata(expr).ast() as ExprNode;
  } catch (err) {
    const e = err as { message: string; position?: number; token?: string };
    problem(path, `JSONata: ${e.message}${e.position !== undefined ? ` (at character ${e.position})` : ''}`);
    return undefined;
  }
  for (const issue of unknownFunctions(ast)) inExpr(path, expr, issue);
  return ast;
}

type ExprProblemFn = (path: (string | number)[], expr: string, issue: ExprIssue) => void;

/**
 * The file offset of character `at` of the expression in the scalar at `path`: exact for
 * plain and quoted scalars without escapes; otherwise (block scalars, '' and \ escapes) the
 * same occurrence of the same token in the source text.
 */
function exprOffset(doc: Document, text: string, path: (string | number)[], expr: string, at: number): number {
  const node = doc.getIn(path, true);
  if (!isScalar(node) || !node.range) return nodeOffset(doc, path);
  const [start, end] = node.range;
  const src = text.slice(start, end);
  const quote = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? 1 : 0;
  if (src.slice(quote, quote + expr.length) === expr) return start + quote + at;
  const token = /^[\w$]+|^[^]/.exec(expr.slice(at))?.[0] ?? '';
  if (!token) return start;
  let nth = 0;
  for (let i = expr.indexOf(token); i !== -1 && i < at; i = expr.indexOf(token, i + 1)) nth++;
  let found = -1;
  for (let k = 0; k <= nth; k++) {
    found = src.indexOf(token, found + 1);
    if (found === -1) return start;
  }
  return start + found;
}

/** Offset of the first character of a plain or quoted scalar's content. */
function filterQuoteOffset(doc: Document, path: (string | number)[]): number {
  const node = doc.getIn(path, true);
  return isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') ? 1 : 0;
}



/** The offending value, bounded, for messages. */
function valueOf(e: ErrorObject): string {
  const v = e.data;
  return typeof v === 'string' ? JSON.stringify(excerpt(v)) : excerpt(String(JSON.stringify(v)));
}

function schemaProblems(errors: ErrorObject[], locate: (path: (string | number)[], key?: boolean) => Place): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // oneOf reports every branch; the branch messages say it better
    if (e.keyword === 'oneOf') continue;
    const path: (string | number)[] = e.instancePath.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
    let message = e.message ?? 'is invalid';
    let where: Place;
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      path.push(extra);
      message = `unknown property "${extra}" (known: ${known.join(', ')})`;
      where = locate(path, true);
    } else if (e.keyword === 'required') {
      message = `missing required property "${(e.params as { missingProperty: string }).missingProperty}"`;
      where = locate(path);
    } else if (e.schemaPath.includes('/definitions/duration')) {
      message = `${valueOf(e)} is not a duration: write a number of seconds (at most 2073600, 24 days) or 500ms, 30s, 1m30s, 5m, 1h, 2d`;
      where = locate(path);
    } else if (e.keyword === 'pattern' && path.at(-2) === 'outputs') {
      message = `${valueOf(e)} is not an output name: write a plain file name inside --out (letters, digits, _ . -; no folders, no control characters) ending in .ndjson, .json, .csv, .yaml, .folded or .svg`;
      where = locate(path);
    } else if (e.keyword === 'pattern' || e.keyword === 'type' || e.keyword === 'exclusiveMinimum') {
      const schema = e.parentSchema as { description?: string } | undefined;
      message = `${message}${schema?.description ? ` — ${schema.description}` : ''}`;
      where = locate(path);
    } else {
      where = locate(path);
    }
    const key = `${where.where} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ ...where, path: jsonPath(path), message });
  }
  return problems;
}
