/**
 * JSONata from recipes runs in a worker thread with a heap limit and a time budget per
 * expression. JSONata's own hooks cannot stop everything (a recursion that never
 * returns, a JS RegExp inside $match backtracking for hours); terminating the worker
 * can, and the main thread stays free for signals meanwhile. An item that exceeds its
 * budget or the heap fails alone: the worker is replaced and goes on with the next one.
 */
import { Worker } from 'node:worker_threads';
import type { ResultFile } from './artifacts.ts';
import type { WorkloadSummary } from './summary.ts';

export type SandboxJob =
  | { kind: 'transform'; expr: string; input: string; output: string }
  /** the distinct values (as strings, sorted) of `expr` over each record of a result */
  | { kind: 'keys'; expr: string; input: ResultFile }
  | {
      kind: 'assertions';
      exprs: string[];
      /** per expression, the step fields it reads: one that no record has fails it */
      reads: { step: string; field: string }[][];
      /** each step's result on disk; null for a step that has none (it did not run) */
      steps: Record<string, ResultFile | null>;
      stats: Record<string, unknown>;
      workload: WorkloadSummary | null;
    };

export type WorkerMessage =
  | { type: 'begin'; item: number }
  | { type: 'done'; item: number; value: unknown }
  | { type: 'error'; item: number; message: string }
  | { type: 'end' };

export interface Limits {
  /** per expression, from when its inputs are loaded */
  timeoutMs: number;
  /** the worker's old-generation heap */
  memoryMb: number;
  /** aborting terminates the worker (SIGINT while evaluating) */
  signal?: AbortSignal;
}

export type Outcome =
  | { ok: true; value: unknown }
  | { ok: false; kind: 'error' | 'timeout' | 'memory' | 'interrupted'; message: string };

export const DEFAULT_LIMITS = { timeoutMs: 10_000, memoryMb: 512 } as const;

/** Run the job's items (one transform, or every assertion) and give each one's outcome. */
export async function runSandboxed(job: SandboxJob, limits: Limits): Promise<Outcome[]> {
  const count = itemCount(job);
  const outcomes: Outcome[] = [];
  while (outcomes.length < count) {
    const got = await runWorker(job, outcomes.length, limits);
    outcomes.push(...got);
  }
  return outcomes;
}

/** One worker from item `startAt`: the outcomes up to the first one that killed it (or all). */
const itemCount = (job: SandboxJob) => (job.kind === 'assertions' ? job.exprs.length : 1);

function runWorker(job: SandboxJob, startAt: number, limits: Limits): Promise<Outcome[]> {
  const count = itemCount(job);
  const outcomes: Outcome[] = [];
  return new Promise((resolve) => {
    if (limits.signal?.aborted) return resolve(fill(outcomes, startAt, count, { ok: false, kind: 'interrupted', message: 'interrupted' }));
    const worker = startWorker({ ...job, startAt }, limits.memoryMb);
    let current = startAt;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (failure?: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      // the item that was running fails; the ones after it get a fresh worker
      if (failure) outcomes.push(failure);
      resolve(failure?.ok === false && failure.kind === 'interrupted' ? fill(outcomes, startAt, count, failure) : outcomes);
    };
    const onAbort = () => finish({ ok: false, kind: 'interrupted', message: 'interrupted' });
    limits.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'begin') {
        current = m.item;
        clearTimeout(timer);
        timer = setTimeout(() => finish({ ok: false, kind: 'timeout', message: 'timeout' }), limits.timeoutMs);
      } else if (m.type === 'done' || m.type === 'error') {
        clearTimeout(timer);
        const outcome: Outcome = m.type === 'done' ? { ok: true, value: m.value } : { ok: false, kind: 'error', message: m.message };
        // a failure before any item began (reading the inputs) is every remaining item's
        if (m.item < 0) {
          fill(outcomes, startAt, count, outcome);
          return finish();
        }
        outcomes.push(outcome);
        if (startAt + outcomes.length >= count) finish();
      } else if (m.type === 'end') {
        finish();
      }
    });
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') finish({ ok: false, kind: 'memory', message: 'out of memory' });
      else finish({ ok: false, kind: 'error', message: err.message });
    });
    worker.on('exit', () => {
      if (!settled) finish(startAt + outcomes.length < count ? { ok: false, kind: 'error', message: `the evaluation worker stopped before item ${current + 1}` } : undefined);
    });
  });
}

function fill(outcomes: Outcome[], startAt: number, count: number, outcome: Outcome): Outcome[] {
  while (startAt + outcomes.length < count) outcomes.push(outcome);
  return outcomes;
}

/** The worker file next to this module: TypeScript under tsx, or the bundle's build/sandbox-worker.mjs. */
function startWorker(data: unknown, memoryMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: memoryMb };
  if (import.meta.url.endsWith('.ts')) {
    // a worker does not inherit tsx's loader hooks: register them inside it first
    const api = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./sandbox-worker.ts', import.meta.url).href;
    const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
    return new Worker(boot, { eval: true, workerData: data, resourceLimits });
  }
  return new Worker(new URL('./sandbox-worker.mjs', import.meta.url), { workerData: data, resourceLimits });
}

/** "transform of step X exceeded its 10s budget" and the like. */
export function describe(what: string, outcome: Extract<Outcome, { ok: false }>, limits: Limits): string {
  switch (outcome.kind) {
    case 'timeout':
      return `${what} exceeded its ${formatBudget(limits.timeoutMs)} budget (raise eval_timeout if it needs longer)`;
    case 'memory':
      return `${what} ran out of memory (${limits.memoryMb} MB; raise eval_memory if it needs more)`;
    case 'interrupted':
      return `${what} was interrupted`;
    default:
      return `${what} failed: ${outcome.message}`;
  }
}

function formatBudget(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
