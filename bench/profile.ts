/**
 * profile/cpu's costs, side by side in one run:
 * 1. overhead: a CPU-bound loop (workload/busy_loop.c, fixed work) alone and
 *    under profile/cpu at 49 Hz per CPU, alternating, --runs times each;
 *    medians of the loop's CPU time (user + system: the sampler's interrupt
 *    and BPF program run on the sampled task and count there) and wall time.
 *    CPU time is the figure: on a shared machine the wall time mostly
 *    measures the neighbours.
 * 2. symbolization: a profile of at least --samples samples (busy loops on
 *    every CPU, sampled at a high frequency), then the time stop() takes to
 *    read the maps and symbolize every stack into folded rows, as wall and
 *    as CPU time of this process (llvm-cxxfilt's run is a child: wall only).
 * Results: bench/results/profile.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bootToWallNs } from '../src/ebpf/clock.ts';
import { onlineCpus } from '../src/ebpf/perf.ts';
import { openSession } from '../src/steps/index.ts';
import { profileCpu } from '../src/gadgets/profile/cpu.ts';
import type { StepContext } from '../src/steps/types.ts';
import { collect, exited, parseWorkload } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, n: { type: 'string', default: '20000' }, samples: { type: 'string', default: '10000' } } });
const runs = Number(values.runs);
const REPO = path.resolve(import.meta.dirname, '..');
execFileSync('make', ['-s', '-C', path.join(REPO, 'bpf')]);
execFileSync('make', ['-s', '-C', path.join(REPO, 'bench')]);
const LOOP = path.join(REPO, 'build/bench/busy_loop');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-profile-'));

function context(id: string, params: Record<string, unknown>): StepContext {
  return {
    id, params, filter: [], spoolPath: path.join(work, `${id}-${Math.random().toString(36).slice(2)}.ndjson`), bootToWallNs: bootToWallNs(),
    objectDir: path.join(REPO, 'build/bpf'), options: {}, maxBytes: Number.MAX_SAFE_INTEGER,
  };
}

async function loop(n: string) {
  const child = spawn(LOOP, [n], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = collect(child.stdout);
  await exited(child);
  return parseWorkload(out());
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// 1. overhead at the default 49 Hz
const untraced: { elapsedS: number; cpuS: number }[] = [];
const profiled: { elapsedS: number; cpuS: number }[] = [];
for (let i = 0; i < runs; i++) {
  untraced.push(await loop(values.n!));
  const session = await openSession(profileCpu, context('overhead', {}));
  session.start();
  profiled.push(await loop(values.n!));
  await session.stop();
  console.error(`run ${i + 1}/${runs}: untraced ${untraced[i].cpuS.toFixed(3)} s CPU, profiled ${profiled[i].cpuS.toFixed(3)} s CPU`);
}
const med = (xs: { elapsedS: number; cpuS: number }[], k: 'elapsedS' | 'cpuS') => median(xs.map((x) => x[k]));
const overhead = med(profiled, 'cpuS') / med(untraced, 'cpuS') - 1;

// 2. symbolization of a profile of at least --samples samples
const want = Number(values.samples);
const cpus = onlineCpus().length;
const frequency = 997;
const seconds = Math.ceil(want / (frequency * cpus));
const session = await openSession(profileCpu, context('symbolize', { frequency }));
session.start();
await Promise.all(Array.from({ length: cpus }, () => loop(String(Math.round(seconds * 2500)))));
const t0 = performance.now();
const cpu0 = process.cpuUsage();
await session.stop();
const stopMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const stopCpuMs = (cpu.user + cpu.system) / 1000;
const rows = fs.readdirSync(work).filter((f) => f.startsWith('symbolize')).flatMap((f) => fs.readFileSync(path.join(work, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { count: number }));
const samples = rows.reduce((n, r) => n + r.count, 0);
fs.rmSync(work, { recursive: true, force: true });

const result = {
  machine: { cpus, kernel: os.release() },
  loadAverage: os.loadavg()[0],
  overhead: {
    frequency: 49, runs, overheadPct: +(overhead * 100).toFixed(2),
    untracedMedianCpuS: med(untraced, 'cpuS'), profiledMedianCpuS: med(profiled, 'cpuS'),
    untracedMedianWallS: med(untraced, 'elapsedS'), profiledMedianWallS: med(profiled, 'elapsedS'), untraced, profiled,
  },
  symbolization: { samples, stacks: rows.length, stopWallMs: Math.round(stopMs), stopCpuMs: Math.round(stopCpuMs) },
};
fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(REPO, 'bench/results/profile.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
