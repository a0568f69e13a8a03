/**
 * The sandbox's worker thread (see sandbox.ts): reads its inputs from NDJSON files
 * itself (paths cross the thread boundary, not megabytes of structured clone), then
 * evaluates one JSONata expression per item, saying `begin` before each so the main
 * thread can time it, and `done` or `error` after.
 */
import { parentPort, workerData } from 'node:worker_threads';
import jsonata from 'jsonata';
import { asRecords, readNdjson, writeAtomic, type ResultFile } from './artifacts.ts';
import type { SandboxJob, WorkerMessage } from './sandbox.ts';

const job = workerData as SandboxJob & { startAt: number };
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

async function readResult(from: ResultFile): Promise<unknown> {
  const records = await readNdjson(from.file);
  return from.shape === 'single' ? records[0] : records;
}

async function main(): Promise<void> {
  if (job.kind === 'transform') {
    const input = await readNdjson(job.input);
    post({ type: 'begin', item: 0 });
    const result = await jsonata(job.expr).evaluate(input);
    const shape = result === undefined || result === null ? 'none' : Array.isArray(result) ? 'list' : 'single';
    await writeAtomic(job.output, (out) => {
      for (const r of asRecords(result)) out.write(JSON.stringify(r) + '\n');
    });
    post({ type: 'done', item: 0, value: shape });
    return;
  }
  const steps: Record<string, unknown> = {};
  for (const [id, from] of Object.entries(job.steps)) steps[id] = from ? await readResult(from) : [];
  const input = { steps, stats: job.stats, workload: job.workload };
  for (let item = job.startAt; item < job.exprs.length; item++) {
    post({ type: 'begin', item });
    try {
      const value = await jsonata(job.exprs[item]).evaluate(input);
      post({ type: 'done', item, value: value === true ? true : (JSON.stringify(value) ?? 'nothing') });
    } catch (err) {
      post({ type: 'error', item, message: (err as Error).message });
    }
  }
}

main().then(
  () => post({ type: 'end' }),
  (err) => post({ type: 'error', item: -1, message: (err as Error).message }),
);
