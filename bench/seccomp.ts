/**
 * advise/seccomp-profile's recording cost: a loop of 2M getppid
 * (workload/getppid_loop.c) in a fresh cgroup, untraced, under a do-nothing
 * raw_tp on sys_enter (reference/empty_sys_enter.bpf.c: the floor any
 * sys_enter hook pays here), under advise/seccomp-profile scoped to that
 * cgroup (every syscall recorded) and scoped to another cgroup (what every
 * other process of the node pays while it records), interleaved --runs
 * times; medians of the loop's CPU time (the BPF program runs in the task
 * and counts as its system time) and wall time.
 * --before DIR: also run the advise_seccomp.bpf.o in DIR (built from an
 * older commit, with the same `syscalls` map) in the same alternation, so
 * before/after ratios come from one run on a noisy machine.
 * Budget: recording ≤ 1.15× the empty hook. Results: bench/results/seccomp.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bootToWallNs } from '../src/ebpf/clock.ts';
import { BpfObject } from '../src/ebpf/object.ts';
import { adviseSeccompProfile } from '../src/gadgets/advise/seccomp-profile.ts';
import { createWorkloadCgroup } from '../src/runner/workload.ts';
import { openSession } from '../src/steps/index.ts';
import { alternate, collect, exited, median, parseWorkload, type WorkloadResult } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, n: { type: 'string', default: '2000000' }, before: { type: 'string' } } });
const runs = Number(values.runs);
const REPO = path.resolve(import.meta.dirname, '..');
execFileSync('make', ['-s', '-C', path.join(REPO, 'bpf')]);
execFileSync('make', ['-s', '-C', path.join(REPO, 'bench')]);
const LOOP = path.join(REPO, 'build/bench/getppid_loop');
const EMPTY = path.join(REPO, 'build/bench/empty_sys_enter.bpf.o');
execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I${path.join(REPO, 'build/bpf')}`, '-c', path.join(REPO, 'bench/reference/empty_sys_enter.bpf.c'), '-o', EMPTY]);
const OBJECTS = path.join(REPO, 'build/bpf');
const BEFORE = values.before && path.resolve(values.before);
if (BEFORE && !fs.existsSync(path.join(BEFORE, adviseSeccompProfile.object))) throw new Error(`--before ${BEFORE}: no ${adviseSeccompProfile.object} there`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-seccomp-'));

// the loop runs in a cgroup of its own, as a workload does: the profile records that cgroup (or another one)
const watched = createWorkloadCgroup('bench-seccomp');
const elsewhere = createWorkloadCgroup('bench-seccomp-other');

async function loop(): Promise<WorkloadResult> {
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3"', 'sh', watched.path, LOOP, values.n!], { stdio: ['ignore', 'pipe', 'inherit'] });
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

async function underRecording(cgroup: { id: bigint; level: number }, objectDir = OBJECTS): Promise<WorkloadResult> {
  const session = await openSession(adviseSeccompProfile, {
    id: 'seccomp', params: {}, filter: [], cgroup, spoolPath: path.join(work, `seccomp-${Math.random().toString(36).slice(2)}.ndjson`),
    bootToWallNs: bootToWallNs(), objectDir, options: {}, maxBytes: Number.MAX_SAFE_INTEGER,
  });
  session.start();
  try {
    return await loop();
  } finally {
    await session.stop();
  }
}

const before = (name: string, run: () => Promise<WorkloadResult>) => (BEFORE ? { [name]: run } : {});
const cases: Record<string, () => Promise<WorkloadResult>> = {
  untraced: loop,
  emptyHook: underEmptyHook,
  recording: () => underRecording(watched),
  ...before('recordingBefore', () => underRecording(watched, BEFORE)),
  anotherCgroup: () => underRecording(elsewhere),
  ...before('anotherCgroupBefore', () => underRecording(elsewhere, BEFORE)),
};
const loadAtStart = os.loadavg()[0];
let results: Record<string, WorkloadResult[]>;
try {
  results = await alternate(cases, runs);
} finally {
  // the last loop's exit may still be leaving the cgroup
  for (const dir of [watched.path, elsewhere.path]) {
    for (let i = 0; i < 50; i++) {
      try { fs.rmdirSync(dir); break; } catch { await new Promise((r) => setTimeout(r, 20)); }
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
const med = (k: string, f: 'cpuS' | 'elapsedS') => median(results[k].map((r) => r[f]));
const perCase = (f: 'cpuS' | 'elapsedS') => Object.fromEntries(Object.keys(cases).map((k) => [k, med(k, f)]));
const overEmptyHook = (k: string) => +(med(k, 'cpuS') / med('emptyHook', 'cpuS')).toFixed(3);
const result = {
  machine: { cpus: os.cpus().length, kernel: os.release() },
  // the 1-minute load average before the first run and after the last: what else the machine was doing
  loadAverage: { atStart: loadAtStart, atEnd: os.loadavg()[0] },
  n: Number(values.n), runs, ...(BEFORE ? { before: BEFORE } : {}),
  medianCpuS: perCase('cpuS'),
  medianWallS: perCase('elapsedS'),
  emptyHookOverUntraced: +(med('emptyHook', 'cpuS') / med('untraced', 'cpuS')).toFixed(3),
  overEmptyHook: Object.fromEntries(Object.keys(cases).filter((k) => k !== 'untraced' && k !== 'emptyHook').map((k) => [k, overEmptyHook(k)])),
  budget: 1.15,
  results,
};
fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(REPO, 'bench/results/seccomp.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ ...result, results: undefined }, null, 2));
