/**
 * traceloop's cost, side by side in one run, alternating, --runs times each;
 * medians of the loop's CPU time (the BPF programs run in its context and
 * count as its system time) and wall time:
 * - a getppid loop (workload/getppid_loop.c, 2M syscalls) untraced; under
 *   traceloop watching its cgroup (every syscall recorded); under traceloop
 *   watching another cgroup (the price others pay while it is left on: the
 *   hooks run and the cgroup check says no); under bpftrace printing every
 *   sys_enter and sys_exit of its cgroup (streaming each syscall to user
 *   space, the strace-like way, through bpftrace's perf buffer); and under
 *   empty tp_btf sys_enter + sys_exit programs (reference/
 *   empty_sys_enter_exit.bpf.c: the floor any such hook pair pays, so
 *   "another cgroup ÷ empty hooks" is traceloop's own price for the node);
 * - an open loop (workload/open_loop.c, open+close of /dev/null) untraced,
 *   under traceloop and under trace/open (a ring-buffer stream of every open,
 *   path included, decoded into NDJSON), each scoped to the loop's cgroup.
 * --before DIR: also run the traceloop object in DIR (a traceloop.bpf.o
 * built from an older commit, same maps and constants) in the same
 * alternation, so before/after ratios come from one run on a noisy machine.
 * --skip a,b: leave out the configurations whose names contain a or b (the
 * untraced baselines always run: the ratios need them).
 * Results: bench/results/traceloop.json.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bootToWallNs } from '../src/ebpf/clock.ts';
import { BpfObject } from '../src/ebpf/object.ts';
import { createWorkloadCgroup } from '../src/runner/workload.ts';
import { openSession } from '../src/steps/index.ts';
import { traceOpen } from '../src/gadgets/trace/open.ts';
import { traceloop } from '../src/gadgets/traceloop.ts';
import type { GadgetDefinition, StepContext, StepSession } from '../src/steps/types.ts';
import { collect, exited, median, parseWorkload, type WorkloadResult } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, n: { type: 'string', default: '2000000' }, opens: { type: 'string', default: '200000' }, before: { type: 'string' }, skip: { type: 'string', default: '' } } });
const runs = Number(values.runs);
const REPO = path.resolve(import.meta.dirname, '..');
execFileSync('make', ['-s', '-C', path.join(REPO, 'bpf')]);
execFileSync('make', ['-s', '-C', path.join(REPO, 'bench')]);
const EMPTY = path.join(REPO, 'build/bench/empty_sys_enter_exit.bpf.o');
execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I${path.join(REPO, 'build/bpf')}`, '-c', path.join(REPO, 'bench/reference/empty_sys_enter_exit.bpf.c'), '-o', EMPTY]);
const OBJECTS = path.join(REPO, 'build/bpf');
const BEFORE = values.before && path.resolve(values.before);
if (BEFORE && !fs.existsSync(path.join(BEFORE, traceloop.object))) throw new Error(`--before ${BEFORE}: no ${traceloop.object} there`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-traceloop-'));
const watched = createWorkloadCgroup('bench-traceloop');
const elsewhere = createWorkloadCgroup('bench-traceloop-other');

function context(id: string, cgroup: { id: bigint; level: number }, objectDir: string): StepContext {
  return {
    id, params: {}, filter: [], cgroup, spoolPath: path.join(work, `${id}-${Math.random().toString(36).slice(2)}.ndjson`), bootToWallNs: bootToWallNs(),
    objectDir, options: {}, maxBytes: Number.MAX_SAFE_INTEGER,
  };
}

/** Run a loop binary inside the watched cgroup (the shell moves itself in, then execs it). */
async function loop(binary: string, n: string): Promise<WorkloadResult> {
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3"', 'sh', watched.path, binary, n], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = collect(child.stdout);
  const code = await exited(child);
  if (code !== 0) throw new Error(`${binary} exited with ${code}`);
  return parseWorkload(out());
}

async function underGadget(def: GadgetDefinition, cgroup: { id: bigint; level: number }, run: () => Promise<WorkloadResult>, objectDir = OBJECTS) {
  const session: StepSession = await openSession(def, context(def.id.replace('/', '-'), cgroup, objectDir));
  session.start();
  try {
    return await run();
  } finally {
    const outcome = await session.stop();
    if (outcome.lost) console.error(`${def.id}: ${outcome.lost} lost`);
  }
}

/** The do-nothing sys_enter + sys_exit pair attached while `run` runs. */
async function underEmptyHooks(run: () => Promise<WorkloadResult>) {
  const obj = BpfObject.open(EMPTY);
  try {
    await obj.load();
    obj.attachAll();
    return await run();
  } finally {
    obj.close();
  }
}

/** bpftrace printing each sys_enter and sys_exit of the watched cgroup; its output is read (and dropped) by this process. */
async function underBpftrace(run: () => Promise<WorkloadResult>) {
  const script = `tracepoint:raw_syscalls:sys_enter /cgroup == ${watched.id}/ { printf("%d %d enter %d %lx %lx %lx\\n", pid, tid, args->id, args->args[0], args->args[1], args->args[2]); }
tracepoint:raw_syscalls:sys_exit /cgroup == ${watched.id}/ { printf("%d exit %d\\n", tid, args->ret); }`;
  const child: ChildProcess = spawn('bpftrace', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lost = '';
  child.stderr!.on('data', (c: Buffer) => (lost += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', function ready(c: Buffer) {
      if (c.toString().includes('Attaching')) {
        child.stdout!.off('data', ready);
        child.stdout!.resume();
        resolve();
      }
    });
    child.once('close', (code) => reject(new Error(`bpftrace exited (${code}) before it attached: ${lost}`)));
  });
  try {
    return await run();
  } finally {
    child.kill('SIGINT');
    await exited(child);
    const m = /Lost (\d+) events/.exec(lost);
    if (m) console.error(`bpftrace: ${m[1]} events lost`);
  }
}

const GETPPID = path.join(REPO, 'build/bench/getppid_loop');
const OPEN = path.join(REPO, 'build/bench/open_loop');
const getppid = () => loop(GETPPID, values.n!);
const opens = () => loop(OPEN, values.opens!);
const before = (name: string, run: () => Promise<WorkloadResult>) => (BEFORE ? { [name]: run } : {});
const allConfigs: Record<string, () => Promise<WorkloadResult>> = {
  'getppid untraced': getppid,
  'getppid empty sys_enter+sys_exit hooks': () => underEmptyHooks(getppid),
  'getppid traceloop (its cgroup)': () => underGadget(traceloop, watched, getppid),
  ...before('getppid traceloop before (its cgroup)', () => underGadget(traceloop, watched, getppid, BEFORE)),
  'getppid traceloop (another cgroup)': () => underGadget(traceloop, elsewhere, getppid),
  ...before('getppid traceloop before (another cgroup)', () => underGadget(traceloop, elsewhere, getppid, BEFORE)),
  'getppid bpftrace printf of every syscall': () => underBpftrace(getppid),
  'open untraced': opens,
  'open traceloop': () => underGadget(traceloop, watched, opens),
  ...before('open traceloop before', () => underGadget(traceloop, watched, opens, BEFORE)),
  'open trace/open stream': () => underGadget(traceOpen, watched, opens),
};
const skip = values.skip!.split(',').filter(Boolean);
const configs = Object.fromEntries(Object.entries(allConfigs).filter(([name]) => name.endsWith('untraced') || !skip.some((s) => name.includes(s))));

const loadAtStart = os.loadavg()[0];
const results: Record<string, WorkloadResult[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
try {
  for (let i = 0; i < runs; i++) {
    for (const [name, run] of Object.entries(configs)) {
      results[name].push(await run());
      console.error(`run ${i + 1}/${runs} ${name}: ${results[name][i].cpuS.toFixed(3)} s CPU, ${results[name][i].elapsedS.toFixed(3)} s wall`);
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmdirSync(watched.path);
  fs.rmdirSync(elsewhere.path);
}

const med = (name: string, k: 'cpuS' | 'elapsedS') => median(results[name].map((r) => r[k]));
const table = Object.fromEntries(Object.keys(configs).map((name) => {
  const base = name.startsWith('open') ? 'open untraced' : 'getppid untraced';
  // the open loop makes two syscalls an iteration (open, close)
  const syscalls = name.startsWith('open') ? 2 * Number(values.opens) : Number(values.n);
  return [name, {
    medianCpuS: med(name, 'cpuS'), medianWallS: med(name, 'elapsedS'), nsPerSyscallCpu: Math.round((med(name, 'cpuS') / syscalls) * 1e9),
    vsUntracedCpu: +(med(name, 'cpuS') / med(base, 'cpuS')).toFixed(2),
  }];
}));
/** a ÷ b of median CPU times, where both ran */
const ratio = (a: string, b: string) => (results[a] && results[b] ? +(med(a, 'cpuS') / med(b, 'cpuS')).toFixed(2) : undefined);
const EMPTY_ROW = 'getppid empty sys_enter+sys_exit hooks';
const ratios = {
  emptyHooksOverUntraced: ratio(EMPTY_ROW, 'getppid untraced'),
  anotherCgroupOverEmptyHooks: ratio('getppid traceloop (another cgroup)', EMPTY_ROW),
  watchedOverEmptyHooks: ratio('getppid traceloop (its cgroup)', EMPTY_ROW),
  ...(BEFORE ? {
    beforeAnotherCgroupOverEmptyHooks: ratio('getppid traceloop before (another cgroup)', EMPTY_ROW),
    beforeWatchedOverEmptyHooks: ratio('getppid traceloop before (its cgroup)', EMPTY_ROW),
    openOverBefore: ratio('open traceloop', 'open traceloop before'),
  } : {}),
};
// the 1-minute load average before the first run and after the last: what else the machine was doing
const result = { machine: { cpus: os.cpus().length, kernel: os.release() }, loadAverage: { atStart: loadAtStart, atEnd: os.loadavg()[0] }, runs, getppidN: Number(values.n), opens: Number(values.opens), ...(BEFORE ? { before: BEFORE } : {}), table, ratios };
fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(REPO, 'bench/results/traceloop.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
