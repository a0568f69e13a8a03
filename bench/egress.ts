/**
 * What the recipe's `egress:` block costs. Its connect4/6 and sendmsg4/6 programs sit on the
 * cgroup v2 root for the run (so that containers the workload starts are judged too), so every
 * connect(2) and sendto(2) of the node passes them, in or out of the run. The workload
 * (workload/udp_loop.c: N UDP connects and N one-byte sendtos to 127.0.0.1:9) runs, alternating:
 *   untraced  — no run;
 *   outside   — a run in block mode is attached (its workload sleeps) and the loop is NOT part
 *               of it: what every other process of the node pays while a run is on;
 *   inside    — the loop IS the run's workload, every attempt allowed by 127.0.0.0/8 (judged,
 *               matched against the allow-list, let through).
 * Medians of the loop's CPU time (the programs run in its context and count as its system time),
 * as ns per attempt, and their ratios to untraced, from one run on one machine.
 * `sudo node --import tsx bench/egress.ts [--runs 5 --n 200000]`. Results: bench/results/egress.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { InterruptedError, run } from '../src/api/index.ts';
import { alternate, collect, exited, median, parseWorkload, type WorkloadResult } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, n: { type: 'string', default: '200000' } } });
const runs = Number(values.runs);
const n = Number(values.n);
const REPO = path.resolve(import.meta.dirname, '..');
execFileSync('make', ['-s', '-C', path.join(REPO, 'bpf')]);
execFileSync('make', ['-s', '-C', path.join(REPO, 'bench')]);
const LOOP = path.join(REPO, 'build/bench/udp_loop');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-egress-'));
fs.chmodSync(work, 0o755);
const egress = { mode: 'block' as const, allow: ['127.0.0.0/8'] };

async function loop(): Promise<WorkloadResult> {
  const child = spawn(LOOP, [String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = collect(child.stdout);
  const code = await exited(child);
  if (code !== 0) throw new Error(`udp_loop exited with ${code}: ${out()}`);
  return parseWorkload(out());
}

/** The loop while a run in block mode is attached for a workload that only sleeps. */
async function outside(): Promise<WorkloadResult> {
  const abort = new AbortController();
  let attached!: () => void;
  const ready = new Promise<void>((r) => (attached = r));
  const recipe = { name: 'bench-egress-outside', run: 'sleep 3600', egress };
  const running = run(recipe, { out: path.join(work, 'outside'), signal: abort.signal, user: 'root', onProgress: (p) => p.phase === 'attached' && attached() }).catch((err) => {
    if (!(err instanceof InterruptedError)) throw err;
  });
  await Promise.race([ready, running.then(() => { throw new Error('the run ended before it attached'); })]);
  try {
    return await loop();
  } finally {
    abort.abort();
    await running;
  }
}

/** The loop as the run's workload; its JSON line goes to a file (a workload's stdout is the terminal's). */
async function inside(): Promise<WorkloadResult> {
  const file = path.join(work, 'inside.json');
  fs.rmSync(file, { force: true });
  const recipe = { name: 'bench-egress-inside', run: `exec '${LOOP}' ${n} > '${file}'`, egress };
  const summary = await run(recipe, { out: path.join(work, 'inside'), user: 'root' });
  if (summary.status !== 'passed') throw new Error(`the inside run ${summary.status}: ${summary.reasons.join('; ')}`);
  return parseWorkload(fs.readFileSync(file, 'utf8'));
}

const cases: Record<string, () => Promise<WorkloadResult>> = { untraced: loop, outside, inside };
const loadAtStart = os.loadavg()[0];
let results: Record<string, WorkloadResult[]>;
try {
  results = await alternate(cases, runs);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
const med = (k: string) => median(results[k].map((r) => r.cpuS));
// two calls (connect + sendto) per iteration
const nsPerCall = (k: string) => Math.round((med(k) * 1e9) / (2 * n));
const result = {
  machine: { cpus: os.cpus().length, kernel: os.release() },
  loadAverage: { atStart: loadAtStart, atEnd: os.loadavg()[0] },
  n, runs,
  medianCpuS: Object.fromEntries(Object.keys(cases).map((k) => [k, med(k)])),
  nsPerCall: Object.fromEntries(Object.keys(cases).map((k) => [k, nsPerCall(k)])),
  overUntraced: { outside: +(med('outside') / med('untraced')).toFixed(3), inside: +(med('inside') / med('untraced')).toFixed(3) },
  results,
};
fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(REPO, 'bench/results/egress.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ ...result, results: undefined }, null, 2));
