/**
 * The evaluation side of the seam: from a captured directory (DIR/raw, see capture.ts)
 * and the recipe, run each step's transform (sandboxed), stream its outputs, then the
 * assertions (sandboxed). No kernel, no session: it runs as well on a directory
 * captured earlier or merged from several nodes. DIR/raw is only read, so whatever
 * fails here, the captured events stay.
 */
import fs from 'node:fs';
import path from 'node:path';
import { artifactPath, makePrivateDir, readNdjson, writeOutput, type ResultFile } from './artifacts.ts';
import { rawEventsPath, readMeta, RAW_DIR, type StepMeta } from './capture.ts';
import { joinContainers, readContainerTable } from './containers.ts';
import type { ContainerTable } from '../containers/table.ts';
import { parseDuration, parseSize } from './duration.ts';
import type { Recipe, StepSpec } from './recipe.ts';
import { includes, readsOf, type Reads } from './references.ts';
import { findGadget } from '../steps/index.ts';
import { DEFAULT_LIMITS, describe, runSandboxed, type Limits } from './sandbox.ts';
import type { AssertionSummary, StepSummary, WorkloadSummary } from './summary.ts';

export interface EvaluateOptions {
  log?: (line: string) => void;
  /** aborting stops the JSONata running at the time (its step or assertion fails as interrupted) */
  signal?: AbortSignal;
}

export interface Evaluation {
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

export async function evaluate(recipe: Recipe, dir: string, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const log = opts.log ?? (() => {});
  const limits = limitsOf(recipe, opts.signal);
  const metas = recipe.steps.map((spec) => readMeta(dir, spec.id));
  const steps = recipe.steps.map((spec, i) => stepSummary(spec, metas[i]));
  const containers = readContainerTable(path.join(dir, RAW_DIR));
  // a step's result on disk, or null when it has none (it did not run, its transform failed)
  const results: Record<string, ResultFile | null> = {};
  const work = makePrivateDir(dir, '.evaluate-');
  try {
    for (const [i, spec] of recipe.steps.entries()) {
      results[spec.id] = await evaluateStep(spec, metas[i], steps[i], dir, work, limits, log, containers);
    }
    const workload = metas.find((m) => m?.workload)?.workload;
    const assertions = await checkAssertions(recipe, steps, results, workload, limits);
    return { steps, assertions, ...(workload ? { workload } : {}) };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function stepSummary(spec: StepSpec, meta: StepMeta | undefined): StepSummary {
  if (!meta) return { id: spec.id, gadget: spec.gadget, status: 'not_run', events: 0, lost: 0, artifacts: [], reason: `no capture in ${RAW_DIR}/`, durationMs: 0 };
  return {
    id: spec.id,
    gadget: meta.gadget,
    status: meta.status,
    events: meta.events,
    lost: meta.lost,
    ...(meta.truncated !== undefined ? { truncated: meta.truncated } : {}),
    artifacts: [],
    ...(meta.reason !== undefined ? { reason: meta.reason } : {}),
    ...(meta.warnings?.length ? { warnings: meta.warnings } : {}),
    durationMs: meta.durationMs,
    ...(meta.ended ? { ended: meta.ended } : {}),
  };
}

/** a truncated step ran: its events up to max_bytes are there */
const ran = (status: StepSummary['status']) => status === 'ok' || status === 'interrupted' || status === 'truncated';

async function evaluateStep(spec: StepSpec, meta: StepMeta | undefined, summary: StepSummary, dir: string, work: string, limits: Limits, log: (l: string) => void, containers?: ContainerTable): Promise<ResultFile | null> {
  if (!meta || !ran(meta.status)) return null;
  const fail = (reason: string) => {
    summary.status = 'failed';
    summary.reason = reason;
    log(`step ${spec.id}: ${reason}`);
  };
  let raw = rawEventsPath(dir, spec.id);
  if (!fs.existsSync(raw)) {
    fail(`its events are missing: ${raw} does not exist`);
    return null;
  }
  let fields = meta.fields;
  if (containers && meta.fields.includes('cgroup_id')) {
    // events gain their container's fields here, not on the capture path
    const joined = path.join(work, `${spec.id}.containers.ndjson`);
    const { events, columns } = await joinContainers(raw, joined, containers, spec.id);
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
  let result: ResultFile = { file: raw, shape: 'list' };
  if (spec.transform !== undefined) {
    const output = path.join(work, `${spec.id}.result.ndjson`);
    log(`step ${spec.id}: transforming ${meta.events} events`);
    const [outcome] = await runSandboxed({ kind: 'transform', expr: spec.transform, input: raw, output }, limits);
    if (!outcome.ok) {
      fail(describe(`transform of step ${spec.id}`, outcome, limits));
      return null;
    }
    result = { file: output, shape: outcome.value as ResultFile['shape'] };
  }
  for (const name of spec.outputs ?? []) {
    try {
      await writeOutput(artifactPath(dir, name), result, spec.transform === undefined ? fields : undefined);
      summary.artifacts.push(name);
    } catch (err) {
      // the result is still good for assertions; this output alone is lost
      fail(`output ${name} failed: ${(err as Error).message}`);
    }
  }
  return result;
}

async function checkAssertions(recipe: Recipe, steps: StepSummary[], results: Record<string, ResultFile | null>, workload: WorkloadSummary | undefined, limits: Limits): Promise<AssertionSummary[]> {
  const list = recipe.assertions ?? [];
  const out: (AssertionSummary | undefined)[] = list.map(() => undefined);
  const toRun: number[] = [];
  const needEvents = new Set<string>();
  const specs = new Map(recipe.steps.map((s) => [s.id, s]));
  const byId = new Map(steps.map((s) => [s.id, s]));
  for (const [i, a] of list.entries()) {
    let reads: Reads;
    try {
      reads = readsOf(a.expr);
    } catch (err) {
      out[i] = { name: a.name, passed: false, status: 'failed', message: `could not evaluate: ${(err as Error).message}` };
      continue;
    }
    const read = steps.filter((s) => includes(reads.steps, s.id));
    const missing = read.filter((s) => results[s.id] === null);
    if (missing.length) {
      const why = missing.map((s) => `step ${s.id} ${s.status}${s.reason ? `: ${s.reason}` : ''}`).join('; ');
      out[i] = missing.every((s) => specs.get(s.id)?.optional)
        ? { name: a.name, passed: false, status: 'skipped', message: `skipped: optional ${why}` }
        : { name: a.name, passed: false, status: 'not_evaluated', message: `not evaluated: ${why}` };
      continue;
    }
    for (const s of steps) if (includes(reads.events, s.id)) needEvents.add(s.id);
    toRun.push(i);
  }
  if (toRun.length) {
    const outcomes = await runSandboxed(
      {
        kind: 'assertions',
        exprs: toRun.map((i) => list[i].expr),
        steps: Object.fromEntries([...needEvents].map((id) => [id, results[id]])),
        stats: Object.fromEntries([...byId.values()].map((s) => [s.id, { status: s.status, events: s.events, lost: s.lost }])),
        workload: workload ?? null,
      },
      limits,
    );
    toRun.forEach((i, k) => {
      const a = list[i];
      const o = outcomes[k];
      if (o.ok && o.value === true) out[i] = { name: a.name, passed: true, status: 'passed', message: 'held' };
      else if (o.ok) out[i] = { name: a.name, passed: false, status: 'failed', message: a.message ?? `expected true, got ${clip(String(o.value))}` };
      else if (o.kind === 'error') out[i] = { name: a.name, passed: false, status: 'failed', message: `could not evaluate: ${o.message}` };
      else out[i] = { name: a.name, passed: false, status: 'failed', message: describe(`assertion "${a.name}"`, o, limits) };
    });
  }
  return out as AssertionSummary[];
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}… (${s.length} characters)` : s;
}
