/**
 * advise/seccomp-profile's recording cost: a loop of 2M getppid
 * (workload/getppid_loop.c) in a fresh cgroup, untraced, under a do-nothing
 * raw_tp on sys_enter (reference/empty_sys_enter.bpf.c: the floor any
 * sys_enter hook pays here) and under advise/seccomp-profile scoped to that
 * cgroup, interleaved --runs times; medians of the loop's CPU time (the BPF
 * program runs in the task and counts as its system time) and wall time.
 * Budget: recording ≤ 1.15× the empty hook. Results: bench/results/seccomp.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cgroup2Mount } from '../src/containers/discovery.ts';
import { bootToWallNs } from '../src/ebpf/clock.ts';
import { BpfObject } from '../src/ebpf/object.ts';
import { adviseSeccompProfile } from '../src/gadgets/advise/seccomp-profile.ts';
import { openSession } from '../src/steps/index.ts';
import { collect, exited, parseWorkload, type WorkloadResult } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, n: { type: 'string', default: '2000000' } } });
const runs = Number(values.runs);
const REPO = path.resolve(import.meta.dirname, '..');
execFileSync('make', ['-s', '-C', path.join(REPO, 'bpf')]);
execFileSync('make', ['-s', '-C', path.join(REPO, 'bench')]);
const LOOP = path.join(REPO, 'build/bench/getppid_loop');
const EMPTY = path.join(REPO, 'build/bench/empty_sys_enter.bpf.o');
execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I${path.join(REPO, 'build/bpf')}`, '-c', path.join(REPO, 'bench/reference/empty_sys_enter.bpf.c'), '-o', EMPTY]);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-seccomp-'));

// the loop runs in a cgroup of its own, as a workload does: the profile records that cgroup
const cgDir = path.join(cgroup2Mount(), `bench-seccomp-${process.pid}`);
fs.mkdirSync(cgDir);
const cgroup = { id: fs.statSync(cgDir, { bigint: true }).ino, level: 1 };

async function loop(): Promise<WorkloadResult> {
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3"', 'sh', cgDir, LOOP, values.n!], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = collect(child.stdout);
  await exited(child);
  return parseWorkload(out());
}

async function underEmptyHook(): Promise<WorkloadResult> {
  const obj = BpfObject.open(EMPTY);
  try {
    await obj.load();
    obj.attachAll();
    return await loop();
  } finally {
    obj.close();
  }
}

async function underRecording(): Promise<WorkloadResult> {
  const session = await openSession(adviseSeccompProfile, {
    id: 'seccomp', params: {}, filter: [], cgroup, spoolPath: path.join(work, `seccomp-${Math.random().toString(36).slice(2)}.ndjson`),
    bootToWallNs: bootToWallNs(), objectDir: path.join(REPO, 'build/bpf'), options: {}, maxBytes: Number.MAX_SAFE_INTEGER,
  });
  session.start();
  try {
    return await loop();
  } finally {
    await session.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cases = { untraced: loop, emptyHook: underEmptyHook, recording: underRecording };
const results: Record<keyof typeof cases, WorkloadResult[]> = { untraced: [], emptyHook: [], recording: [] };
try {
  for (let i = 0; i < runs; i++) {
    for (const [name, fn] of Object.entries(cases) as [keyof typeof cases, () => Promise<WorkloadResult>][]) results[name].push(await fn());
    console.error(`run ${i + 1}/${runs}: ` + Object.entries(results).map(([k, r]) => `${k} ${r[i].cpuS.toFixed(3)} s CPU`).join(', '));
  }
} finally {
  // the last loop's exit may still be leaving the cgroup
  for (let i = 0; i < 50; i++) {
    try { fs.rmdirSync(cgDir); break; } catch { await new Promise((r) => setTimeout(r, 20)); }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
const med = (k: keyof typeof cases, f: 'cpuS' | 'elapsedS') => median(results[k].map((r) => r[f]));
const result = {
  machine: { cpus: os.cpus().length, kernel: os.release() },
  loadAverage: os.loadavg()[0],
  n: Number(values.n), runs,
  medianCpuS: { untraced: med('untraced', 'cpuS'), emptyHook: med('emptyHook', 'cpuS'), recording: med('recording', 'cpuS') },
  medianWallS: { untraced: med('untraced', 'elapsedS'), emptyHook: med('emptyHook', 'elapsedS'), recording: med('recording', 'elapsedS') },
  emptyHookOverUntraced: +(med('emptyHook', 'cpuS') / med('untraced', 'cpuS')).toFixed(3),
  recordingOverEmptyHook: +(med('recording', 'cpuS') / med('emptyHook', 'cpuS')).toFixed(3),
  budget: 1.15,
  results,
};
fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(REPO, 'bench/results/seccomp.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ ...result, results: undefined }, null, 2));
