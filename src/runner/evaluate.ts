/**
 * The evaluation side of the seam: from a captured directory (DIR/raw, see capture.ts)
 * and the recipe, run each step's transform (sandboxed), stream its outputs, diff its
 * baseline, then the assertions (sandboxed). No kernel, no session: it runs as well on a
 * directory captured earlier (`gadget-run replay`) or merged from several nodes.
 * DIR/raw is only read, so whatever fails here, the captured events stay.
 */
import fs from 'node:fs';
import path from 'node:path';
import { artifactPath, makePrivateDir, readNdjson, writeOutput, writeTextAtomic, type ResultFile } from './artifacts.ts';
import { flameGraphSvg, foldedText, parseFolded, stackCounts, type StackCount } from './flamegraph.ts';
import { BaselineError, diffKeys, readBaseline, resolveBaseline, writeBaseline } from './baseline.ts';
import { rawEventsPath, readMeta, readRunMeta, RAW_DIR, type RunMeta, type StepMeta } from './capture.ts';
import { readContainerTable } from './containers.ts';
import { EnrichError, enrichRaw, needsEnrich } from './enrich.ts';
import { matchesSelection } from '../containers/selection.ts';
import type { ContainerTable } from '../containers/table.ts';
import { excerpt, parseDuration, parseSize } from '../steps/duration.ts';
import { stepFieldReads } from './expr-check.ts';
import { EGRESS_STEP } from './egress.ts';
import type { Recipe, StepSpec } from './recipe.ts';
import { includes, readsOf, type Node, type Reads } from './references.ts';
import { findGadget } from '../steps/index.ts';
import { DEFAULT_LIMITS, describe, runSandboxed, type Limits } from './sandbox.ts';
import { endedBy, type AssertionSummary, type BaselineDiff, type Evidence, type FunctionShare, type StepSummary, type WorkloadSummary } from './summary.ts';
import { jsonata } from '../deferred.ts';

export interface EvaluateOptions {
  log?: (line: string) => void;
  /** aborting stops the JSONata running at the time (its step or assertion fails as interrupted) */
  signal?: AbortSignal;
  /** where outputs go; default: the captured folder itself */
  outDir?: string;
  /** the recipe's folder, which baseline files are relative to; default: the current folder */
  recipeDir?: string;
  /** write each step's baseline from this run's keys instead of failing on new ones */
  updateBaseline?: boolean;
}

export interface Evaluation {
  run: RunMeta | undefined;
  steps: StepSummary[];
  assertions: AssertionSummary[];
  workload?: WorkloadSummary;
}

export function limitsOf(recipe: Recipe, signal?: AbortSignal): Limits {
  return {
    timeoutMs: recipe.eval_timeout === undefined ? DEFAULT_LIMITS.timeoutMs : parseDuration(recipe.eval_timeout),
    memoryMb: recipe.eval_memory === undefined ? DEFAULT_LIMITS.memoryMb : parseSize(recipe.eval_memory) / (1024 * 1024),
    signal,
  };
}

interface Context {
  dir: string;
  outDir: string;
  work: string;
  limits: Limits;
  log: (l: string) => void;
  opts: EvaluateOptions;
  /** the recipe's name: advise documents fall back to it for their own */
  recipe: string;
}

export async function evaluate(recipe: Recipe, dir: string, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const log = opts.log ?? (() => {});
  const limits = limitsOf(recipe, opts.signal);
  const run = readRunMeta(dir);
  const metas = recipe.steps.map((spec) => readMeta(dir, spec.id));
  const steps = recipe.steps.map((spec, i) => stepSummary(spec, recipe, metas[i]));
  const containers = readContainerTable(path.join(dir, RAW_DIR));
  // a step's result on disk, or null when it has none (it did not run, its transform failed)
  const results: Record<string, ResultFile | null> = {};
  const outDir = opts.outDir ?? dir;
  const work = makePrivateDir(outDir, '.evaluate-');
  const ctx: Context = { dir, outDir, work, limits, log, opts, recipe: recipe.name };
  try {
    for (const [i, spec] of recipe.steps.entries()) {
      results[spec.id] = await evaluateStep(spec, metas[i], steps[i], ctx, containers);
      if (results[spec.id] && spec.baseline) await checkBaseline(spec, results[spec.id]!, steps[i], ctx);
    }
    const workload = metas.find((m) => m?.workload)?.workload;
    const assertions = run?.could_not_trace
      ? (recipe.assertions ?? []).map((a) => ({ name: a.name, passed: false, status: 'not_evaluated' as const, message: 'not evaluated: nothing could be traced here' }))
      : await checkAssertions(recipe, steps, results, workload, limits);
    return { run, steps, assertions, ...(workload ? { workload } : {}) };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** What the egress step enforced, every entry spelled out (loopback and the resolvers too, when allowed). */
function egressSummary(egress: NonNullable<Recipe['egress']>, spec: StepSpec): NonNullable<StepSummary['egress']> {
  return {
    mode: egress.mode,
    allow: (spec.params?.allow as string[] | undefined) ?? [],
    allow_loopback: egress.allow_loopback ?? true,
    allow_resolver: egress.allow_resolver ?? true,
    ...(egress.baseline !== undefined ? { baseline: egress.baseline } : {}),
  };
}

function stepSummary(spec: StepSpec, recipe: Recipe, meta: StepMeta | undefined): StepSummary {
  const policy = {
    ...(spec.optional ? { optional: true } : {}),
    ...((spec.allow_lost ?? recipe.allow_lost) ? { allow_lost: spec.allow_lost ?? recipe.allow_lost } : {}),
  };
  if (!meta) return { id: spec.id, gadget: spec.gadget, status: 'not_run', events: 0, lost: 0, artifacts: [], reason: `no capture in ${RAW_DIR}/`, durationMs: 0, ...policy };
  const ended = endedBy(meta.ended);
  return {
    id: spec.id,
    gadget: meta.gadget,
    status: meta.status,
    events: meta.events,
    lost: meta.lost,
    ...(meta.truncated !== undefined ? { truncated: meta.truncated } : {}),
    artifacts: [],
    ...(meta.reason !== undefined ? { reason: meta.reason } : {}),
    ...(meta.why !== undefined ? { why: meta.why } : {}),
    ...(meta.warnings?.length ? { warnings: [...meta.warnings] } : {}),
    durationMs: meta.durationMs,
    ...(ended ? { ended_by: ended } : {}),
    ...(meta.instances ? { instances: meta.instances } : {}),
    ...(meta.suppressed ? { suppressed: meta.suppressed } : {}),
    ...(meta.canary ? { canary: meta.canary } : {}),
    ...policy,
    ...(recipe.egress && spec.id === EGRESS_STEP ? { egress: egressSummary(recipe.egress, spec) } : {}),
  };
}

/** a truncated step ran: its events up to max_bytes are there */
const ran = (status: StepSummary['status']) => status === 'ok' || status === 'interrupted' || status === 'truncated';

async function evaluateStep(spec: StepSpec, meta: StepMeta | undefined, summary: StepSummary, ctx: Context, containers?: ContainerTable): Promise<ResultFile | null> {
  // a snapshot whose moment never came: its outputs exist and are empty, so a job that reads them does not break
  if (meta?.status === 'not_run' && meta.snapshot_not_taken) {
    const empty = path.join(ctx.work, `${spec.id}.empty.ndjson`);
    fs.writeFileSync(empty, '');
    await writeOutputs(spec, { file: empty, shape: 'list' }, meta.fields, summary, ctx);
    return null;
  }
  // a start_on step whose trigger never came reads as no events when the recipe says so (if_not_triggered: empty)
  const empty = meta?.status === 'not_triggered' && spec.if_not_triggered === 'empty';
  if (!meta || (!ran(meta.status) && !empty)) return null;
  let raw = rawEventsPath(ctx.dir, spec.id);
  if (empty) fs.writeFileSync((raw = path.join(ctx.work, `${spec.id}.empty.ndjson`)), '');
  if (!fs.existsSync(raw)) {
    fail(spec, summary, `its events are missing: ${raw} does not exist`, ctx);
    return null;
  }
  let fields = meta.fields;
  if (needsEnrich(containers, meta.fields, meta.parts)) {
    // the one enrich stage (enrich.ts): containers and the node join the events here, not on the capture path
    const joined = path.join(ctx.work, `${spec.id}.enriched.ndjson`);
    let enriched: Awaited<ReturnType<typeof enrichRaw>>;
    try {
      enriched = await enrichRaw(raw, joined, containers, spec.id, meta.parts);
    } catch (err) {
      if (!(err instanceof EnrichError)) throw err;
      fail(spec, summary, err.message, ctx);
      return null;
    }
    const { events, columns } = enriched;
    raw = joined;
    fields = [...meta.fields, ...columns.filter((c) => !meta.fields.includes(c))];
    summary.events = events;
  }
  const report = findGadget(meta.gadget)?.report;
  if (report) {
    try {
      // the gadget's own view of what it captured (histogram bars), before any transform
      summary.report = report((await readNdjson(raw)) as Record<string, unknown>[]);
    } catch (err) {
      summary.warnings = [...(summary.warnings ?? []), `report of ${meta.gadget} failed: ${(err as Error).message}`];
    }
  }
  const advise = findGadget(meta.gadget)?.advise;
  if (advise) {
    // an advise step's result is its documents; its connections stay in raw/
    const docs = advise.generate((await readNdjson(raw)) as Record<string, unknown>[], containers, {
      params: spec.params ?? {}, recipe: ctx.recipe, ...(meta.documents ? { selection: meta.documents } : {}),
    });
    // an empty result because nothing was selected is not "no traffic": say so
    if (meta.documents && !(containers?.containers ?? []).some((c) => matchesSelection(c, meta.documents!))) {
      summary.warnings = [...(summary.warnings ?? []), `no container matched the selection ${JSON.stringify(meta.documents)}: no documents were generated for it`];
    }
    raw = path.join(ctx.work, `${spec.id}.advice.ndjson`);
    fs.writeFileSync(raw, docs.map((d) => JSON.stringify(d) + '\n').join(''), { mode: 0o600 });
    fields = advise.fields(spec.params ?? {});
  }
  // a document gadget's one row is its result itself (a .json output is the document)
  let result: ResultFile = { file: raw, shape: findGadget(meta.gadget)?.document ? 'single' : 'list' };
  if (spec.transform !== undefined) {
    const output = path.join(ctx.work, `${spec.id}.result.ndjson`);
    ctx.log(`step ${spec.id}: transforming ${meta.events} events`);
    const [outcome] = await runSandboxed({ kind: 'transform', expr: spec.transform, input: raw, output }, ctx.limits);
    if (!outcome.ok) {
      const why = describe(`transform of step ${spec.id}`, outcome, ctx.limits);
      // which expression failed and where (JSONata's position), and where the events still are
      fail(spec, summary, outcome.kind === 'interrupted' ? why : `${why} — in ${JSON.stringify(excerpt(spec.transform, 120))}; its ${meta.events} events as captured are kept in ${RAW_DIR}/${spec.id}.ndjson`, ctx);
      return null;
    }
    result = { file: output, shape: outcome.value as ResultFile['shape'] };
  }
  await writeOutputs(spec, result, fields, summary, ctx);
  return result;
}

function fail(spec: StepSpec, summary: StepSummary, reason: string, ctx: Context): void {
  summary.status = 'failed';
  summary.reason = reason;
  ctx.log(`step ${spec.id}: ${reason}`);
}

/** `fields`: the CSV columns of an untransformed result (the gadget's, then the containers') */
async function writeOutputs(spec: StepSpec, result: ResultFile, fields: string[], summary: StepSummary, ctx: Context): Promise<void> {
  for (const name of spec.outputs ?? []) {
    try {
      await writeOutput(artifactPath(ctx.outDir, name), result, spec.transform === undefined ? fields : undefined, findGadget(spec.gadget)?.outputs);
      summary.artifacts.push(name);
    } catch (err) {
      // the result is still good for assertions; this output alone is lost
      fail(spec, summary, `output ${name} failed: ${(err as Error).message}`, ctx);
    }
  }
}

/** The step's keys against its baseline: new ones fail the run (unless --update-baseline writes them). */
async function checkBaseline(spec: StepSpec, result: ResultFile, summary: StepSummary, ctx: Context): Promise<void> {
  const { file, key } = spec.baseline!;
  if (key === undefined) return checkProfileBaseline(spec, result, summary, ctx);
  const [outcome] = await runSandboxed({ kind: 'keys', expr: key, input: result }, ctx.limits);
  if (!outcome.ok) return fail(spec, summary, describe(`baseline key of step ${spec.id} (${JSON.stringify(excerpt(key, 120))})`, outcome, ctx.limits), ctx);
  const keys = outcome.value as string[];
  try {
    const target = resolveBaseline(ctx.opts.recipeDir ?? '.', file);
    const known = readBaseline(target);
    const diff: BaselineDiff = { file, ...diffKeys(keys, known ?? []) };
    if (ctx.opts.updateBaseline) {
      if (known === undefined || diff.added.length || diff.removed.length) await writeBaseline(target, keys);
      diff.updated = true;
      ctx.log(`step ${spec.id}: baseline ${file} written (${keys.length} keys)`);
    }
    summary.baseline = diff;
  } catch (err) {
    if (!(err instanceof BaselineError)) throw err;
    fail(spec, summary, err.message, ctx);
  }
}

/** The biggest changes of share a profile baseline reports each way. */
const PROFILE_CHANGES = 10;
/** A profile baseline is folded text of at most this size: more is not a profile we wrote. */
const MAX_FOLDED_BYTES = 64 * 1024 * 1024;

/**
 * A profile against its .folded baseline: the functions whose share of the
 * samples grew and shrank most, and a differential flame graph
 * (STEP.diff.svg). Reported, never failing the run: a profile's shares move
 * with the machine's load. --update-baseline writes this run's stacks.
 */
async function checkProfileBaseline(spec: StepSpec, result: ResultFile, summary: StepSummary, ctx: Context): Promise<void> {
  const { file } = spec.baseline!;
  const stacks = stackCounts(await readNdjson(result.file));
  try {
    const target = resolveBaseline(ctx.opts.recipeDir ?? '.', file);
    let text: string | undefined;
    try {
      if (fs.statSync(target).size > MAX_FOLDED_BYTES) throw new BaselineError(`baseline ${file} is over ${MAX_FOLDED_BYTES >> 20} MiB: not a profile's folded stacks`);
      text = fs.readFileSync(target, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err instanceof BaselineError ? err : new BaselineError(`cannot read the baseline ${file}: ${(err as Error).message}`);
    }
    let before: ReturnType<typeof parseFolded> = [];
    if (text !== undefined) {
      try {
        before = parseFolded(text, file);
      } catch (err) {
        throw new BaselineError(`${(err as Error).message}; write it with --update-baseline`);
      }
    }
    const diff: BaselineDiff = { file, added: [], removed: [] };
    if (text !== undefined) {
      const name = `${spec.id}.diff.svg`;
      await writeTextAtomic(artifactPath(ctx.outDir, name), flameGraphSvg(stacks, `${spec.id} against ${file}`, before));
      summary.artifacts.push(name);
      const now = functionShares(stacks);
      const then = functionShares(before);
      const changes = [...new Set([...now.keys(), ...then.keys()])]
        .map((f) => ({ function: f, before: round2((then.get(f) ?? 0) * 100), after: round2((now.get(f) ?? 0) * 100) }))
        .filter((c) => c.after !== c.before);
      const by = (a: FunctionShare, b: FunctionShare) => Math.abs(b.after - b.before) - Math.abs(a.after - a.before) || a.function.localeCompare(b.function);
      diff.profile = {
        samples: stacks.reduce((n, s) => n + s.count, 0),
        baselineSamples: before.reduce((n, s) => n + s.count, 0),
        grew: changes.filter((c) => c.after > c.before).sort(by).slice(0, PROFILE_CHANGES),
        shrank: changes.filter((c) => c.after < c.before).sort(by).slice(0, PROFILE_CHANGES),
        diff: name,
      };
    }
    if (ctx.opts.updateBaseline) {
      await writeTextAtomic(target, foldedText(stacks));
      diff.updated = true;
      ctx.log(`step ${spec.id}: baseline ${file} written (${stacks.length} stacks)`);
    }
    summary.baseline = diff;
  } catch (err) {
    if (!(err instanceof BaselineError)) throw err;
    fail(spec, summary, err.message, ctx);
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Each function's inclusive share of the samples: in any frame of a stack, counted once a stack. */
function functionShares(stacks: StackCount[]): Map<string, number> {
  const counts = new Map<string, number>();
  let total = 0;
  for (const { stack, count } of stacks) {
    total += count;
    for (const f of new Set(stack.split(';'))) counts.set(f, (counts.get(f) ?? 0) + count);
  }
  for (const [f, n] of counts) counts.set(f, total ? n / total : 0);
  return counts;
}

async function checkAssertions(recipe: Recipe, steps: StepSummary[], results: Record<string, ResultFile | null>, workload: WorkloadSummary | undefined, limits: Limits): Promise<AssertionSummary[]> {
  const list = recipe.assertions ?? [];
  const out: (AssertionSummary | undefined)[] = list.map(() => undefined);
  const toRun: number[] = [];
  const fieldReads: { step: string; field: string }[][] = [];
  const needEvents = new Set<string>();
  const specs = new Map(recipe.steps.map((s) => [s.id, s]));
  const byId = new Map(steps.map((s) => [s.id, s]));
  for (const [i, a] of list.entries()) {
    let reads: Reads;
    let ast: Node;
    try {
      ast = jsonata(a.expr).ast() as Node;
      reads = readsOf(ast);
    } catch (err) {
      out[i] = { name: a.name, passed: false, status: 'failed', message: `could not evaluate: ${(err as Error).message}` };
      continue;
    }
    const read = steps.filter((s) => includes(reads.steps, s.id));
    const missing = read.filter((s) => results[s.id] === null);
    if (missing.length) {
      const why = missing.map((s) => `step ${s.id} ${s.status}${s.reason ? `: ${s.reason}` : ''}`).join('; ');
      out[i] = missing.every((s) => specs.get(s.id)?.optional || (s.status === 'not_triggered' && specs.get(s.id)?.if_not_triggered === 'skip'))
        ? { name: a.name, passed: false, status: 'skipped', message: `skipped: optional ${why}` }
        : { name: a.name, passed: false, status: 'not_evaluated', message: `not evaluated: ${why}` };
      continue;
    }
    for (const s of steps) if (includes(reads.events, s.id)) needEvents.add(s.id);
    toRun.push(i);
    fieldReads.push(stepFieldReads(ast));
  }
  if (toRun.length) {
    const outcomes = await runSandboxed(
      {
        kind: 'assertions',
        exprs: toRun.map((i) => list[i].expr),
        reads: fieldReads,
        steps: Object.fromEntries([...needEvents].map((id) => [id, results[id]])),
        stats: Object.fromEntries([...byId.values()].map((s) => [s.id, { status: s.status, events: s.events, lost: s.lost }])),
        workload: workload ?? null,
      },
      limits,
    );
    toRun.forEach((i, k) => {
      const a = list[i];
      const o = outcomes[k];
      if (!o.ok) {
        out[i] = { name: a.name, passed: false, status: 'failed', message: o.kind === 'error' ? `could not evaluate: ${o.message}` : describe(`assertion "${a.name}"`, o, limits) };
        return;
      }
      const v = o.value as { held: boolean; value?: string; evidence?: Evidence; unresolved?: string };
      if (v.held) out[i] = { name: a.name, passed: true, status: 'passed', message: 'held' };
      else if (v.unresolved) out[i] = { name: a.name, passed: false, status: 'failed', message: v.unresolved };
      else {
        const got = `expected true, got ${clip(String(v.value))}`;
        const shown = v.evidence ? `${got}: ${clip(v.evidence.expr)} was ${clip(JSON.stringify(v.evidence.value) ?? 'nothing')}` : got;
        out[i] = { name: a.name, passed: false, status: 'failed', message: a.message ?? shown, ...(v.evidence ? { evidence: v.evidence } : {}) };
      }
    });
  }
  return out as AssertionSummary[];
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}… (${s.length} characters)` : s;
}
