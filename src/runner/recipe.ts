/**
 * Recipes: YAML parsed with positions, validated with ajv against
 * schemas/recipe.schema.json, then checked against the gadget registry
 * (gadget ids, filter fields, params, JSONata syntax). Every problem names
 * file:line:col and the JSON path, so nothing runs from a bad recipe.
 */
import fs from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import jsonata from 'jsonata';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { gadgets } from '../steps/index.ts';
import type { GadgetDefinition } from '../steps/types.ts';
import { excerpt, formatBytes, parseDuration, parseSize } from './duration.ts';
import recipeSchema from '../../schemas/recipe.schema.json' with { type: 'json' };
import { checkFilter, parseFilter, FilterError, type Predicate } from '../steps/filter.ts';
import { SELECTION_KEYS, type ContainerScope, type ContainerSelection } from '../containers/selection.ts';
import { isRootUser } from './workload.ts';


export type Duration = number | string;

export interface StepSpec {
  id: string;
  gadget: string;
  description?: string;
  filter?: string;
  duration?: Duration;
  delay?: Duration;
  buffer?: string;
  max_bytes?: string;
  params?: Record<string, unknown>;
  transform?: string;
  outputs?: string[];
  optional?: boolean;
  /** this step's container selection (replaces the recipe's) */
  containers?: ContainersSpec;
}

/** `containers:` as written: a selection (src/containers/selection.ts) plus the workload option. */
export type ContainersSpec = ContainerSelection & { workload?: boolean };

export interface Recipe {
  name: string;
  description?: string;
  run?: string;
  timeout?: Duration;
  /** how long a stopped workload has between SIGTERM and SIGKILL (default 10s) */
  grace?: Duration;
  /** a non-root user (name or uid) to run the workload as */
  user?: string | number;
  duration?: Duration;
  sequential?: boolean;
  max_bytes?: string;
  /** a JUnit XML report, a plain file name inside --out */
  junit?: string;
  /** time budget of each transform and assertion (JSONata, sandboxed); default 10s */
  eval_timeout?: Duration;
  /** heap of the JSONata sandbox, e.g. 512MiB (the default) */
  eval_memory?: string;
  /** the containers every step watches, unless a step has its own */
  containers?: ContainersSpec;
  steps: StepSpec[];
  /** run --cluster: see src/k8s/cluster-run.ts */
  cluster?: { allow_missing_nodes?: boolean; attach_timeout?: Duration };
  assertions?: { name: string; expr: string; message?: string }[];
}

/** A step checked against its gadget, ready to plan. */
export interface PlannedStep {
  spec: StepSpec;
  def: GadgetDefinition;
  filter: Predicate[];
  durationMs?: number;
  delayMs: number;
  ringBytes: number;
  /** most bytes of events the step may write */
  maxBytes: number;
  /** the step's container scope; none without `run` or `containers:` */
  containers?: ContainerScope;
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
}

export interface Problem {
  /** file:line:col */
  where: string;
  /** JSON path like steps[1].filter */
  path: string;
  message: string;
}

export class RecipeError extends Error {
  constructor(readonly problems: Problem[]) {
    const shown = problems.slice(0, MAX_PROBLEMS).map((p) => `${p.where} ${p.path ? `${p.path}: ` : ''}${visible(excerpt(p.message, 300))}`);
    if (problems.length > MAX_PROBLEMS) shown.push(`… and ${problems.length - MAX_PROBLEMS} more problems`);
    super(shown.join('\n'));
    this.name = 'RecipeError';
  }
}

const DEFAULT_RING_BYTES = 16 * 1024 * 1024;
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
/** Problems shown at most, so that a recipe of garbage does not flood the terminal. */
const MAX_PROBLEMS = 20;

/** Names the runner writes itself; an output may not take them. */
export const RESERVED_OUTPUTS = ['summary.json', 'report.md'];

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validateRecipe = ajv.compile(recipeSchema);
const paramValidators = new Map<string, ReturnType<typeof ajv.compile>>();

export type Registry = Record<string, GadgetDefinition>;

export function loadRecipeFile(file: string, registry: Registry = gadgets, limits: Limits = DEFAULT_LIMITS): LoadedRecipe {
  let text: string;
  try {
    text = readBounded(file);
  } catch (err) {
    if (err instanceof RecipeError) throw err;
    throw new RecipeError([{ where: file, path: '', message: `cannot read the recipe: ${(err as Error).message}` }]);
  }
  return parseRecipe(text, file, registry, limits);
}

/** The file's text, refusing more than MAX_RECIPE_BYTES without reading it all (it may be a pipe). */
function readBounded(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_RECIPE_BYTES + 1);
    let used = 0;
    for (let n; used < buf.length && (n = fs.readSync(fd, buf, used, buf.length - used, null)) > 0; ) used += n;
    if (used > MAX_RECIPE_BYTES) throw tooLarge(file);
    return buf.toString('utf8', 0, used);
  } finally {
    fs.closeSync(fd);
  }
}

function tooLarge(file: string): RecipeError {
  return new RecipeError([{ where: file, path: '', message: `the recipe is larger than ${formatBytes(MAX_RECIPE_BYTES)}; recipes are small YAML files` }]);
}

export function parseRecipe(text: string, file: string, registry: Registry = gadgets, limits: Limits = DEFAULT_LIMITS): LoadedRecipe {
  if (Buffer.byteLength(text) > MAX_RECIPE_BYTES) throw tooLarge(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length) {
    throw new RecipeError(doc.errors.map((e) => ({ where: at(e.pos[0]), path: '', message: `YAML: ${excerpt(e.message.split('\n')[0], 200)}` })));
  }
  let data: unknown;
  try {
    // anchors and aliases are YAML's; a billion-laughs recipe stops at the alias count
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new RecipeError([{ where: at(0), path: '', message: `YAML: ${excerpt((err as Error).message, 200)}` }]);
  }
  const locate = (path: (string | number)[], key = false) => at(nodeOffset(doc, path, key));

  if (!validateRecipe(data)) {
    throw new RecipeError(schemaProblems(validateRecipe.errors ?? [], locate));
  }
  const recipe = data as unknown as Recipe;
  const problems: Problem[] = [];
  const problem: ProblemFn = (path, message, offsetInValue, key) => {
    const where = offsetInValue === undefined ? locate(path, key) : at(nodeOffset(doc, path) + offsetInValue);
    problems.push({ where, path: jsonPath(path), message });
  };
  const steps = recipe.steps.map((spec, i) => checkStep(spec, i, recipe, doc, problem, registry)).filter((s): s is PlannedStep => !!s);

  const ids = new Set<string>();
  const outputs = new Map<string, string>();
  recipe.steps.forEach((s, i) => {
    if (ids.has(s.id)) problem(['steps', i, 'id'], `duplicate step id "${s.id}" (ids name results and must be unique)`);
    ids.add(s.id);
    s.outputs?.forEach((o, j) => {
      const owner = RESERVED_OUTPUTS.includes(o) || o === recipe.junit ? 'gadget-run itself' : outputs.get(o);
      if (owner) problem(['steps', i, 'outputs', j], `"${o}" is already written by ${owner}; give each output its own name`);
      outputs.set(o, `step ${s.id}`);
    });
  });
  for (const key of ['timeout', 'duration'] as const) {
    if (recipe[key] !== undefined) checkDuration(recipe[key], [key], problem);
  }
  checkTotals(steps, recipe, limits, problem);
  recipe.assertions?.forEach((a, i) => checkJsonata(a.expr, ['assertions', i, 'expr'], problem));
  for (const key of ['user', 'grace'] as const) {
    if (recipe[key] !== undefined && recipe.run === undefined) problem([key], `${key} is about the workload: give the recipe a run command or drop ${key}`);
  }
  if (recipe.user !== undefined && isRootUser(recipe.user)) {
    problem(['user'], `a recipe may not run its workload as root ("${recipe.user}"): name a non-root user, or pass --user root on the command line`);
  }
  if (problems.length) throw new RecipeError(problems);
  const position = (path: (string | number)[]): Position => lines.linePos(nodeOffset(doc, path));
  const positions = {
    steps: recipe.steps.map((_, i) => position(['steps', i])),
    assertions: (recipe.assertions ?? []).map((_, i) => position(['assertions', i])),
  };
  return { file, recipe, steps, positions };
}

/** One problem is one line: control characters a recipe put in a value are shown escaped (\\n, \\u0000). */
function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));
}

type ProblemFn = (path: (string | number)[], message: string, offsetInValue?: number, key?: boolean) => void;

function checkStep(spec: StepSpec, i: number, recipe: Recipe, doc: Document, problem: ProblemFn, registry: Registry): PlannedStep | undefined {
  const def = Object.hasOwn(registry, spec.gadget) ? registry[spec.gadget] : undefined;
  if (!def) {
    problem(['steps', i, 'gadget'], `unknown gadget "${excerpt(spec.gadget)}" (known: ${Object.keys(registry).join(', ')})`);
    return undefined;
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
  if (def.params) {
    let validate = paramValidators.get(def.id);
    if (!validate) paramValidators.set(def.id, (validate = ajv.compile(def.params)));
    if (!validate(spec.params ?? {})) {
      for (const e of validate.errors ?? []) {
        const sub = e.instancePath.split('/').filter(Boolean);
        if (e.keyword === 'additionalProperties') {
          const extra = (e.params as { additionalProperty: string }).additionalProperty;
          const known = Object.keys((def.params.properties as object) ?? {}).join(', ');
          problem(['steps', i, 'params', ...sub, extra], `unknown parameter "${extra}" of ${def.id} (known: ${known})`, undefined, true);
        } else {
          problem(['steps', i, 'params', ...sub], e.message ?? 'is invalid');
        }
      }
    }
  } else if (spec.params && Object.keys(spec.params).length) {
    problem(['steps', i, 'params'], `${def.id} takes no params`);
  }
  if (spec.transform !== undefined) checkJsonata(spec.transform, ['steps', i, 'transform'], problem);

  for (const key of ['duration', 'delay'] as const) {
    if (spec[key] !== undefined) checkDuration(spec[key], ['steps', i, key], problem);
  }
  const duration = spec.duration ?? recipe.duration;
  if (def.mode === 'stream' && duration === undefined && recipe.run === undefined) {
    problem(['steps', i], `${def.id} streams until stopped: give the step a duration (e.g. duration: 30s) or the recipe a run command`);
  }
  if (spec.delay !== undefined && def.mode !== 'snapshot') problem(['steps', i, 'delay'], `delay is for snapshot gadgets; ${def.id} is a ${def.mode} gadget`);
  if (spec.buffer !== undefined && def.mode !== 'stream') problem(['steps', i, 'buffer'], `buffer is for stream gadgets; ${def.id} is a ${def.mode} gadget`);
  let ringBytes = DEFAULT_RING_BYTES;
  if (spec.buffer !== undefined) {
    ringBytes = parseSize(spec.buffer);
    if (ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0) problem(['steps', i, 'buffer'], `the ring buffer size must be a power of two of at least 4KiB (e.g. 1MiB, 16MiB)`);
  }
  const maxBytes = parseSize(spec.max_bytes ?? recipe.max_bytes ?? `${DEFAULT_MAX_BYTES / 1024 ** 2}MiB`);
  const containers = containerScope(spec.containers ?? recipe.containers, recipe.run !== undefined);
  return {
    ...(containers ? { containers } : {}),
    spec,
    def,
    filter,
    durationMs: duration === undefined ? undefined : durationOrZero(duration),
    delayMs: spec.delay === undefined ? 0 : durationOrZero(spec.delay),
    ringBytes: def.mode === 'stream' ? ringBytes : 0,
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
    problem(['steps'], `the steps' ring buffers take ${formatBytes(ring)} together; the limit is ${formatBytes(limits.ringBytes)} (give steps a smaller buffer, or raise the limit with --limit-ring)`);
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

function checkJsonata(expr: string, path: (string | number)[], problem: ProblemFn): void {
  try {
    jsonata(expr);
  } catch (err) {
    const e = err as { message: string; position?: number; token?: string };
    problem(path, `JSONata: ${e.message}${e.position !== undefined ? ` (at character ${e.position})` : ''}`);
  }
}

/** Offset of the first character of a plain or quoted scalar's content. */
function filterQuoteOffset(doc: Document, path: (string | number)[]): number {
  const node = doc.getIn(path, true);
  return isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') ? 1 : 0;
}

function nodeOffset(doc: Document, path: (string | number)[], key = false): number {
  // walk as deep as the document goes; point at the key for unknown-property errors
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth);
    if (key && depth === path.length && depth > 0) {
      const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === sub[sub.length - 1]);
        if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
      }
      continue;
    }
    const node = (sub.length ? doc.getIn(sub, true) : doc.contents) as Node | undefined;
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) return node.range[0];
  }
  return 0;
}

export function jsonPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** The offending value, bounded, for messages. */
function valueOf(e: ErrorObject): string {
  const v = e.data;
  return typeof v === 'string' ? JSON.stringify(excerpt(v)) : excerpt(String(JSON.stringify(v)));
}

function schemaProblems(errors: ErrorObject[], locate: (path: (string | number)[], key?: boolean) => string): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // oneOf reports every branch; the branch messages say it better
    if (e.keyword === 'oneOf') continue;
    const path: (string | number)[] = e.instancePath.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
    let message = e.message ?? 'is invalid';
    let where: string;
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
      message = `${valueOf(e)} is not an output name: write a plain file name inside --out (letters, digits, _ . -; no folders, no control characters) ending in .ndjson, .json or .csv`;
      where = locate(path);
    } else if (e.keyword === 'pattern' || e.keyword === 'type' || e.keyword === 'exclusiveMinimum') {
      const schema = e.parentSchema as { description?: string } | undefined;
      message = `${message}${schema?.description ? ` — ${schema.description}` : ''}`;
      where = locate(path);
    } else {
      where = locate(path);
    }
    const key = `${where} ${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ where, path: jsonPath(path), message });
  }
  return problems;
}
