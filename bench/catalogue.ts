/**
 * The trace catalogue's hot gadgets under load, each side by side with
 * bpftrace attached to the same hooks printing the same fields: N signals,
 * loopback TCP connections, binds, small writes (bench/workload/*_loop.c).
 * Per scenario the variants run interleaved round by round (untraced,
 * gadget-run, bpftrace, untraced, ...), so drift on the machine hits all of
 * them alike; medians over rounds are reported.
 *
 *   node --import tsx bench/catalogue.ts [--runs 5] [--only signal,tcp] [--scale 0.1]
 *
 * Goal (issue 7): for each gadget, 0 lost at the default ring and
 * (t_gadget-run − t_untraced) ≤ (t_bpftrace − t_untraced) / 5.
 * Writes bench/results/catalogue.json. Needs root.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findGadget } from '../src/steps/index.ts';
import { collect, cpuSeconds, exited, fmt, median, runWorkload, waitForFile, type WorkloadResult } from './lib.ts';
import { openGadget, ROOT } from './session.ts';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    only: { type: 'string' },
    scale: { type: 'string', default: '1' },
  },
});
const RUNS = Number(opts.runs);
const SCALE = Number(opts.scale);
if (!Number.isInteger(RUNS) || RUNS <= 0 || !(SCALE > 0)) throw new Error('--runs takes a positive integer, --scale a positive number');
if (process.getuid?.() !== 0) throw new Error('bench/catalogue.ts loads BPF programs: run it as root');

const BENCH_BIN = path.join(ROOT, 'build/bench');
const BPFTRACE = '/usr/bin/bpftrace';
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-catalogue-'));
const TAG = process.pid.toString(16).slice(-4);

interface Scenario {
  name: string;
  gadget: string;
  /** bench/workload/<loop>.c */
  loop: string;
  /** the workload's comm: a per-invocation name, at most 15 bytes, that every tracer filters on */
  comm: string;
  n: number;
  args(n: number, dir: string): string[];
  params?: Record<string, unknown>;
  /** events a tracer should see for N iterations */
  expected(n: number): number;
  /** bpftrace program; every event is one printf line starting with "E " */
  bpftrace(comm: string): string;
}

const scenarios: Scenario[] = [
  {
    name: 'signal',
    gadget: 'trace/signal',
    loop: 'signal_loop',
    comm: `sig_${TAG}`,
    n: 200_000,
    args: (n) => [String(n)],
    // only the loop's own SIGUSR1s: its exit's SIGCHLD to its parent races the tracers' stop
    params: { signal: 'SIGUSR1' },
    expected: (n) => n,
    bpftrace: (comm) => `tracepoint:signal:signal_generate /comm == "${comm}" && args->sig == 10/ {
  printf("E %d %d %s %d %d %d\\n", pid, args->pid, comm, args->sig, args->code, args->result);
}`,
  },
  {
    name: 'tcp',
    gadget: 'trace/tcp',
    loop: 'tcp_loop',
    comm: `tcp_${TAG}`,
    n: 20_000,
    args: (n) => [String(n)],
    // connect, accept, and the close of each of the two ends
    expected: (n) => 4 * n,
    bpftrace: (comm) => `tracepoint:syscalls:sys_exit_connect /comm == "${comm}"/ { printf("E connect %d %s %d\\n", pid, comm, args->ret); }
tracepoint:syscalls:sys_exit_accept4 /comm == "${comm}"/ { printf("E accept %d %s %d\\n", pid, comm, args->ret); }
tracepoint:syscalls:sys_exit_accept /comm == "${comm}"/ { printf("E accept %d %s %d\\n", pid, comm, args->ret); }
tracepoint:sock:inet_sock_set_state /comm == "${comm}" && args->newstate == 7/ {
  printf("E close %d %s %s %s %d %d\\n", pid, comm, ntop(args->saddr), ntop(args->daddr), args->sport, args->dport);
}`,
  },
  {
    name: 'bind',
    gadget: 'trace/bind',
    loop: 'bind_loop',
    comm: `bind_${TAG}`,
    n: 50_000,
    args: (n) => [String(n)],
    expected: (n) => n,
    bpftrace: (comm) => `tracepoint:syscalls:sys_enter_bind /comm == "${comm}"/ { @fd[tid] = args->fd; }
tracepoint:syscalls:sys_exit_bind /@fd[tid]/ { printf("E %d %s %d %d\\n", pid, comm, @fd[tid], args->ret); delete(@fd[tid]); }`,
  },
  {
    name: 'fsslower',
    gadget: 'trace/fsslower',
    loop: 'write_loop',
    comm: `wr_${TAG}`,
    n: 200_000,
    args: (n, dir) => [String(n), path.join(dir, 'write_loop.tmp')],
    params: { min_ms: 0 },
    // every write, plus the one open of the file
    expected: (n) => n + 1,
    bpftrace: (comm) => `tracepoint:syscalls:sys_enter_write /comm == "${comm}"/ { @start[tid] = nsecs; @fd[tid] = args->fd; }
tracepoint:syscalls:sys_exit_write /@start[tid]/ {
  printf("E W %d %s %d %d %d\\n", pid, comm, @fd[tid], args->ret, (nsecs - @start[tid]) / 1000);
  delete(@start[tid]); delete(@fd[tid]);
}`,
  },
];

interface Sample {
  workload: WorkloadResult;
  events?: number;
  lost?: number;
  consumerCpuS?: number;
}

type Variant = (s: Scenario, binary: string, n: number) => Promise<Sample>;

const untraced: Variant = async (s, binary, n) => ({ workload: await runWorkload(binary, s.args(n, TMP)) });

const gadgetRun: Variant = async (s, binary, n) => {
  const spool = path.join(TMP, `${s.name}.ndjson`);
  fs.rmSync(spool, { force: true });
  const session = await openGadget(s.gadget, spool, `comm==${s.comm}`, s.params);
  try {
    session.start();
    const cpu0 = process.cpuUsage();
    const workload = await runWorkload(binary, s.args(n, TMP));
    const cpu = process.cpuUsage(cpu0);
    const outcome = await session.stop();
    return { workload, events: outcome.events, lost: outcome.lost, consumerCpuS: (cpu.user + cpu.system) / 1e6 };
  } finally {
    fs.rmSync(spool, { force: true });
  }
};

const bpftrace: Variant = async (s, binary, n) => {
  const ready = path.join(TMP, 'bpftrace.ready');
  const output = path.join(TMP, 'bpftrace.out');
  fs.rmSync(ready, { force: true });
  // --unsafe for system(): BEGIN runs once every probe is attached
  const program = `BEGIN { system("touch ${ready}"); }\n${s.bpftrace(s.comm)}\n`;
  const child = spawn(BPFTRACE, ['--unsafe', '-o', output, '-e', program], { stdio: ['ignore', 'ignore', 'pipe'] });
  const err = collect(child.stderr);
  const done = exited(child);
  await waitForFile(ready, child, 'bpftrace');
  try {
    const cpu0 = cpuSeconds(child.pid!);
    const workload = await runWorkload(binary, s.args(n, TMP));
    const consumerCpuS = cpuSeconds(child.pid!) - cpu0;
    child.kill('SIGINT');
    if ((await done) !== 0) throw new Error(`bpftrace failed: ${err()}`);
    const text = fs.readFileSync(output, 'utf8');
    const events = text.match(/^E /gm)?.length ?? 0;
    const lost = [...text.matchAll(/^Lost (\d+) events/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    return { workload, events, lost, consumerCpuS };
  } finally {
    fs.rmSync(output, { force: true });
  }
};

execFileSync('make', ['-s', '-C', path.join(ROOT, 'bpf')], { stdio: 'inherit' });
execFileSync('make', ['-s', '-C', path.join(ROOT, 'bench')], { stdio: 'inherit' });

const only = opts.only?.split(',');
const rows = [];
console.log(`${RUNS} rounds per scenario, ${os.cpus().length} CPUs, ${os.release()}, scale ${SCALE}\n`);
for (const s of scenarios) {
  if (only && !only.includes(s.name)) continue;
  if (!findGadget(s.gadget)) {
    console.log(`${s.name}: ${s.gadget} is not in the registry yet — skipped`);
    continue;
  }
  const n = Math.max(1, Math.round(s.n * SCALE));
  const binary = path.join(TMP, s.comm);
  fs.copyFileSync(path.join(BENCH_BIN, s.loop), binary);
  fs.chmodSync(binary, 0o755);
  const variants: [string, Variant][] = [['untraced', untraced], ['gadget-run', gadgetRun]];
  if (fs.existsSync(BPFTRACE)) variants.push(['bpftrace', bpftrace]);
  await untraced(s, binary, n); // warm up; not recorded
  const rounds: Record<string, Sample>[] = [];
  for (let r = 1; r <= RUNS; r++) {
    const round: Record<string, Sample> = {};
    for (const [name, run] of variants) {
      const sample = (round[name] = await run(s, binary, n));
      const ev = sample.events === undefined ? '' : `  events ${sample.events}/${s.expected(n)} lost ${sample.lost}`;
      console.log(`${s.name} run ${r}  ${name.padEnd(10)} ${sample.workload.elapsedS.toFixed(3)} s${ev}`);
    }
    rounds.push(round);
  }
  const med = (name: string, f: (x: Sample) => number | undefined) => {
    const xs = rounds.map((r) => r[name] && f(r[name])).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const t = (name: string) => med(name, (x) => x.workload.elapsedS);
  const base = t('untraced')!;
  const overGr = t('gadget-run')! - base;
  const overBt = t('bpftrace') === undefined ? undefined : t('bpftrace')! - base;
  const lostMax = (name: string) => Math.max(...rounds.map((r) => r[name]?.lost ?? 0));
  const minEvents = (name: string) => Math.min(...rounds.map((r) => r[name]?.events ?? Infinity));
  rows.push({
    scenario: s.name,
    gadget: s.gadget,
    n,
    expected: s.expected(n),
    untracedS: base,
    gadgetRunS: t('gadget-run'),
    bpftraceS: t('bpftrace'),
    gadgetRunEventsMin: minEvents('gadget-run'),
    gadgetRunLostMax: lostMax('gadget-run'),
    bpftraceEventsMin: t('bpftrace') === undefined ? undefined : minEvents('bpftrace'),
    bpftraceLostMax: t('bpftrace') === undefined ? undefined : lostMax('bpftrace'),
    gadgetRunConsumerCpuS: med('gadget-run', (x) => x.consumerCpuS),
    bpftraceConsumerCpuS: med('bpftrace', (x) => x.consumerCpuS),
    // how much of bpftrace's slowdown gadget-run costs: the goal is ≤ 0.2
    overheadVsBpftrace: overBt === undefined || overBt <= 0 ? undefined : overGr / overBt,
  });
}
fs.rmSync(TMP, { recursive: true, force: true });

console.log(`\nmedians of ${RUNS} rounds; overhead = t − t_untraced; goal: gadget-run's overhead ≤ bpftrace's / 5, 0 lost`);
console.log('| gadget | N | untraced s | gadget-run s | bpftrace s | gadget-run events (min) / lost (max) | bpftrace events (min) / lost (max) | overhead gadget-run ÷ bpftrace | consumer CPU s gadget-run / bpftrace |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.gadget} | ${r.n} | ${fmt(r.untracedS, 3)} | ${fmt(r.gadgetRunS, 3)} | ${fmt(r.bpftraceS, 3)} | ` +
      `${r.gadgetRunEventsMin}/${r.expected} / ${r.gadgetRunLostMax} | ${r.bpftraceEventsMin ?? '–'} / ${r.bpftraceLostMax ?? '–'} | ` +
      `${fmt(r.overheadVsBpftrace, 2)} | ${fmt(r.gadgetRunConsumerCpuS, 2)} / ${fmt(r.bpftraceConsumerCpuS, 2)} |`,
  );
}
const out = path.join(ROOT, 'bench/results/catalogue.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), kernel: os.release(), cpus: os.cpus().length, runs: RUNS, rows }, null, 2) + '\n');
console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
