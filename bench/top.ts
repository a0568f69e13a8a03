/**
 * top/file under a write flood: what the interval mode costs.
 * - user-space CPU: gadget-run's own process (this one: the session runs
 *   in-process, as in the runner) while paced_write_loop makes 500 000
 *   one-byte writes a second for 5 s, at the default 1s interval, minus the
 *   same window with nothing traced (the idle event loop);
 * - slowdown: write_loop's 2M writes as fast as it can, untraced and traced
 *   (the BPF programs run in the writer's context and count as its time).
 * Usage: npm run bench:top (root).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fmt, median, runWorkload } from './lib.ts';
import { openGadget, ROOT } from './session.ts';

const BENCH_BIN = path.join(ROOT, 'build/bench');
const RATE = 500_000;
const SECONDS = 5;
const FLOOD = 2_000_000;
const RUNS = 3;

execFileSync('make', ['-s', '-C', path.join(ROOT, 'bpf')], { stdio: 'inherit' });
execFileSync('make', ['-s', '-C', path.join(ROOT, 'bench')], { stdio: 'inherit' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-top-'));

/** CPU seconds this process spent while `f` ran */
async function ownCpu(f: () => Promise<unknown>): Promise<{ cpuS: number; wallS: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  return { cpuS: (c.user + c.system) / 1e6, wallS: (performance.now() - t0) / 1000 };
}

async function traced<T>(comm: string, f: () => Promise<T>): Promise<{ result: T; rows: number }> {
  const spool = path.join(dir, `${comm}-${Math.random().toString(36).slice(2)}.ndjson`);
  const session = await openGadget('top/file', spool, `comm==${comm}`, {}, {});
  session.start();
  let result: T;
  try {
    result = await f();
  } finally {
    await session.stop();
  }
  const rows = fs.readFileSync(spool, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { result, rows: rows.reduce((n, r) => n + r.writes, 0) };
}

const paced = path.join(BENCH_BIN, 'paced_write_loop');
const pacedArgs = [String(RATE * SECONDS), String(RATE), path.join(dir, 'paced.tmp')];
const idle = await ownCpu(() => runWorkload(paced, pacedArgs));
let counted = 0;
const busy = await ownCpu(async () => {
  const { rows } = await traced('paced_write_loo', () => runWorkload(paced, pacedArgs));
  counted = rows;
});
const userCpu = (busy.cpuS - idle.cpuS) / busy.wallS;

const flood = path.join(BENCH_BIN, 'write_loop');
const floodArgs = [String(FLOOD), path.join(dir, 'flood.tmp')];
const untraced: number[] = [];
const withTop: number[] = [];
for (let i = 0; i < RUNS; i++) {
  untraced.push((await runWorkload(flood, floodArgs)).elapsedS);
  withTop.push((await traced('write_loop', () => runWorkload(flood, floodArgs))).result.elapsedS);
}
fs.rmSync(dir, { recursive: true, force: true });

console.log(`top/file, ${RATE} writes/s for ${SECONDS} s at the default 1s interval:`);
console.log(`  writes counted: ${counted} of ${RATE * SECONDS}`);
console.log(`  gadget-run user-space CPU: ${fmt(userCpu * 100, 2)}% of one core (traced ${fmt(busy.cpuS, 3)} s, untraced baseline ${fmt(idle.cpuS, 3)} s over ${fmt(busy.wallS, 1)} s)`);
console.log(`write_loop, ${FLOOD} one-byte writes as fast as it can (median of ${RUNS}):`);
console.log(`  untraced ${fmt(median(untraced), 3)} s, with top/file ${fmt(median(withTop), 3)} s: ${fmt((median(withTop) / median(untraced) - 1) * 100, 0)}% slower`);
