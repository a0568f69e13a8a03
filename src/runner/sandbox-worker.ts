/**
 * The sandbox's worker thread (see sandbox.ts): reads its inputs from NDJSON files
 * itself (paths cross the thread boundary, not megabytes of structured clone), then
 * evaluates one JSONata expression per item, saying `begin` before each so the main
 * thread can time it, and `done` or `error` after. A failed assertion comes back with
 * its evidence (evidence.ts), computed here where the data is.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { jsonata } from '../deferred.ts';
import { asRecords, readNdjson, writeAtomic, type ResultFile } from './artifacts.ts';
import { evidenceOf, unresolvedReads } from './evidence.ts';
import type { SandboxJob, WorkerMessage } from './sandbox.ts';

const job = workerData as SandboxJob & { startAt: number };
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

async function readResult(from: ResultFile): Promise<unknown> {
  const records = await readNdjson(from.file);
  return from.shape === 'single' ? records[0] : records;
}

/** JSONata's errors carry where in the expression they happened. */
export function errorText(err: unknown): string {
  const e = err as { message: string; position?: number; token?: string };
  return e.position === undefined ? e.message : `${e.message} (at character ${e.position}${e.token ? `, near "${e.token}"` : ''})`;
}

async function main(): Promise<void> {
  if (job.kind === 'transform') {
    const input = await readNdjson(job.input);
    post({ type: 'begin', item: 0 });
    let result: unknown;
    try {
      result = await jsonata(job.expr).evaluate(input);
    } catch (err) {
      post({ type: 'error', item: 0, message: errorText(err) });
      return;
    }
    const shape = result === undefined || result === null ? 'none' : Array.isArray(result) ? 'list' : 'single';
    await writeAtomic(job.output, (out) => {
      for (const r of asRecords(result)) out.write(JSON.stringify(r) + '\n');
    });
    post({ type: 'done', item: 0, value: shape });
    return;
  }
  if (job.kind === 'keys') {
    const records = asRecords(await readResult(job.input));
    post({ type: 'begin', item: 0 });
    const key = jsonata(job.expr);
    const keys = new Set<string>();
    try {
      for (const r of records) {
        const v = await key.evaluate(r);
        for (const k of asRecords(v)) keys.add(typeof k === 'string' ? k : JSON.stringify(k));
      }
    } catch (err) {
      post({ type: 'error', item: 0, message: errorText(err) });
      return;
    }
    post({ type: 'done', item: 0, value: [...keys].sort() });
    return;
  }
  const steps: Record<string, unknown> = {};
  for (const [id, from] of Object.entries(job.steps)) steps[id] = from ? await readResult(from) : [];
  const input = { steps, stats: job.stats, workload: job.workload };
  for (let item = job.startAt; item < job.exprs.length; item++) {
    post({ type: 'begin', item });
    try {
      const unresolved = unresolvedReads(job.reads[item] ?? [], steps);
      if (unresolved) {
        post({ type: 'done', item, value: { held: false, unresolved } });
        continue;
      }
      const expr = jsonata(job.exprs[item]);
      const value = await expr.evaluate(input);
      if (value === true) post({ type: 'done', item, value: { held: true } });
      else post({ type: 'done', item, value: { held: false, value: JSON.stringify(value) ?? 'nothing', evidence: await evidenceOf(job.exprs[item], input) } });
    } catch (err) {
      post({ type: 'error', item, message: errorText(err) });
    }
  }
}

main().then(
  () => post({ type: 'end' }),
  (err) => post({ type: 'error', item: -1, message: (err as Error).message }),
);
