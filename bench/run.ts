/**
 * trace/open under load: N open+close of /dev/null by bench/workload/open_loop,
 * timed by the workload itself, untraced and under each tracer, with the
 * events each tracer received and lost. Variants are interleaved round by
 * round (A B C D A B C D ...) so drift on the machine hits all of them alike;
 * medians are reported, and ratios are taken within a round, then the median.
 *
 *   node --import tsx bench/run.ts [--n 1000000] [--runs 3] [--only untraced,gadget-run,...]
 *
 * Writes bench/results/latest.json. Needs root (it loads BPF programs).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { collect, cpuSeconds, exited, fmt, median, parseWorkload, runWorkload as runLoop, waitForFile, waitForLine, type WorkloadResult } from './lib.ts';
import { openTraceOpen, RING_BYTES, ROOT } from './session.ts';

const { values: opts } = parseArgs({
  options: {
    n: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
  },
});
const N = Number(opts.n);
const RUNS = Number(opts.runs);
if (!Number.isInteger(N) || N <= 0 || !Number.isInteger(RUNS) || RUNS <= 0) {
  throw new Error(`--n and --runs take positive integers (got --n ${opts.n} --runs ${opts.runs})`);
}
if (process.getuid?.() !== 0) throw new Error('bench/run.ts loads BPF programs: run it as root');

const BENCH_BIN = path.join(ROOT, 'build/bench');
const OBJECT = path.join(ROOT, 'build/bpf/trace_open.bpf.o');
const BPFTRACE = '/usr/bin/bpftrace';
const CLI = path.join(ROOT, 'bin/gadget-run');
const CLI_BUNDLER = path.join(ROOT, 'scripts/build-cli.mjs');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-bench-'));
// The workload runs under a name of its own per invocation: its comm is what
// every tracer filters on, and another open_loop on the machine (a second
// bench, a test) must not add to the counts.
const WORKLOAD_COMM = `open_loop_${process.pid.toString(16).slice(-4)}`;
const WORKLOAD = path.join(TMP, WORKLOAD_COMM);

interface Sample {
  workload: WorkloadResult;
  events?: number;
  lost?: number;
  /** from spawning (or calling openSession) to every program attached */
  attachMs?: number;
  /** CPU seconds the consumer used while the workload ran (user + system) */
  consumerCpuS?: number;
  /** the CLI variant: the whole command, start to exit */
  commandS?: number;
}

interface Variant {
  name: string;
  what: string;
  run(): Promise<Sample>;
}

// ---- helpers -------------------------------------------------------------

function build(): void {
  // make is incremental; this keeps a stale object from being benchmarked
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'bpf')], { stdio: 'inherit' });
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'bench')], { stdio: 'inherit' });
  fs.copyFileSync(path.join(BENCH_BIN, 'open_loop'), WORKLOAD);
  fs.chmodSync(WORKLOAD, 0o755);
  // bin/gadget-run starts from its bundle only when it is newer than the
  // sources; without it every start transpiles TypeScript with tsx
  if (fs.existsSync(CLI) && fs.existsSync(CLI_BUNDLER)) execFileSync(process.execPath, [CLI_BUNDLER], { stdio: 'inherit' });
}

function runWorkload(): Promise<WorkloadResult> {
  return runLoop(WORKLOAD, [String(N)]);
}

/** Run the workload while `pid` consumes; its CPU use over that window too. */
async function workloadWatchedBy(pid: number): Promise<{ workload: WorkloadResult; consumerCpuS: number }> {
  const cpu0 = cpuSeconds(pid);
  const workload = await runWorkload();
  return { workload, consumerCpuS: cpuSeconds(pid) - cpu0 };
}

// ---- variants ------------------------------------------------------------

const untraced: Variant = {
  name: 'untraced',
  what: 'the workload alone',
  async run() {
    return { workload: await runWorkload() };
  },
};

const gadgetRun: Variant = {
  name: 'gadget-run',
  what: 'trace/open in this process through openSession (codec + NDJSON spool), comm filter, 16 MiB ring',
  async run() {
    const spool = path.join(TMP, 'gadget-run.ndjson');
    const t0 = performance.now();
    const session = await openTraceOpen(spool, WORKLOAD_COMM);
    const attachMs = performance.now() - t0;
    try {
      session.start();
      const { workload, consumerCpuS } = await workloadWatchedBy(process.pid);
      const outcome = await session.stop();
      return { workload, events: outcome.events, lost: outcome.lost, attachMs, consumerCpuS };
    } finally {
      fs.rmSync(spool, { force: true });
    }
  },
};

const cReference: Variant = {
  name: 'C reference',
  what: 'bench/reference/open_consumer: same object, libbpf ring_buffer__consume/__poll(10 ms), counts events',
  async run() {
    const t0 = performance.now();
    const child = spawn(path.join(BENCH_BIN, 'open_consumer'), [OBJECT, WORKLOAD_COMM, String(RING_BYTES)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = collect(child.stdout);
    const done = exited(child);
    await waitForLine(child, /^ready /m, 'open_consumer');
    const attachMs = performance.now() - t0;
    const { workload, consumerCpuS } = await workloadWatchedBy(child.pid!);
    child.kill('SIGINT');
    if ((await done) !== 0) throw new Error(`open_consumer failed: ${out()}`);
    const r = JSON.parse(out());
    return { workload, events: r.events, lost: r.lost, attachMs, consumerCpuS };
  },
};

// The recipe a CI job would write. `run` also puts the workload in its own
// cgroup, which the BPF side then checks as well (one more helper per open).
const CLI_RECIPE = `name: bench_trace_open
run: ${WORKLOAD} ${N}
steps:
  - id: opens
    gadget: trace/open
    filter: comm==${WORKLOAD_COMM}
`;

const cli: Variant = {
  name: 'gadget-run CLI',
  what: 'bin/gadget-run run <recipe>: run: open_loop N, trace/open, comm filter; attach = summary.attachedAfterMs',
  async run() {
    const recipe = path.join(TMP, 'bench.yaml');
    const outDir = path.join(TMP, 'cli-out');
    fs.writeFileSync(recipe, CLI_RECIPE);
    const t0 = performance.now();
    const child = spawn(CLI, ['run', recipe, '--out', outDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = collect(child.stdout);
    const err = collect(child.stderr);
    const code = await exited(child);
    const commandS = (performance.now() - t0) / 1000;
    try {
      if (code !== 0) throw new Error(`gadget-run CLI exited with ${code}:\n${out()}${err()}`);
      const summary = JSON.parse(fs.readFileSync(path.join(outDir, 'summary.json'), 'utf8'));
      const step = summary.steps[0];
      // the workload inherits the CLI's stdout: its JSON line is in there
      return { workload: parseWorkload(out()), events: step.events, lost: step.lost, attachMs: summary.attachedAfterMs, commandS };
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  },
};

// printf per event, not @count: every event crosses to user space with its
// path string, as in the other tracers. bpftrace's printf goes through a
// perf buffer and is written to a file (-o, fully buffered) counted
// afterwards; losses show up in it as "Lost N events" lines.
const BPFTRACE_PROGRAM = (readyFile: string) => `
BEGIN { system("touch ${readyFile}"); }
tracepoint:syscalls:sys_enter_openat /comm == "${WORKLOAD_COMM}"/ { @fname[tid] = args->filename; }
tracepoint:syscalls:sys_exit_openat /@fname[tid]/ {
  printf("%d %d %s %s\\n", pid, args->ret, comm, str(@fname[tid]));
  delete(@fname[tid]);
}
`;

const bpftrace: Variant = {
  name: 'bpftrace',
  what: 'bpftrace 0.17, enter/exit openat with comm filter, printf(pid ret comm path) to a file',
  async run() {
    const ready = path.join(TMP, 'bpftrace.ready');
    const output = path.join(TMP, 'bpftrace.out');
    fs.rmSync(ready, { force: true });
    const t0 = performance.now();
    // --unsafe for system(): BEGIN runs once every probe is attached, and a
    // file is a signal that -o's buffered output cannot hold back
    const child = spawn(BPFTRACE, ['--unsafe', '-o', output, '-e', BPFTRACE_PROGRAM(ready)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const err = collect(child.stderr);
    const done = exited(child);
    await waitForFile(ready, child, 'bpftrace');
    const attachMs = performance.now() - t0;
    try {
      const { workload, consumerCpuS } = await workloadWatchedBy(child.pid!);
      child.kill('SIGINT');
      if ((await done) !== 0) throw new Error(`bpftrace failed: ${err()}`);
      const text = fs.readFileSync(output, 'utf8');
      const events = text.match(new RegExp(`^\\d+ -?\\d+ ${WORKLOAD_COMM} `, 'gm'))?.length ?? 0;
      const lost = [...text.matchAll(/^Lost (\d+) events/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      return { workload, events, lost, attachMs, consumerCpuS };
    } finally {
      fs.rmSync(output, { force: true });
    }
  },
};

/** Library cold start: spawn → every program attached, in a fresh `node --import tsx` (bench/attach.ts). */
async function coldAttach(): Promise<{ spawnToAttachedMs: number; sinceNodeStartMs: number; openSessionMs: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/attach.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let spawnToAttachedMs = NaN;
  let line = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    if (!line && chunk.includes('\n')) spawnToAttachedMs = performance.now() - t0;
    line += chunk;
  });
  if ((await exited(child)) !== 0) throw new Error('bench/attach.ts failed');
  return { spawnToAttachedMs, ...JSON.parse(line) };
}

// ---- main ----------------------------------------------------------------

build();
let variants = [untraced, gadgetRun, cReference];
if (fs.existsSync(CLI)) variants.push(cli);
else console.log(`(no ${CLI}: CLI variant skipped)`);
if (fs.existsSync(BPFTRACE)) variants.push(bpftrace);
else console.log(`(no ${BPFTRACE}: bpftrace variant skipped)`);
if (opts.only) {
  const names = opts.only.split(',');
  variants = variants.filter((v) => names.includes(v.name));
}

console.log(`open+close of /dev/null ×${N.toLocaleString('en')}, ${RUNS} runs, ${os.cpus().length} CPUs, ${os.release()}\n`);
await runWorkload(); // warm up; not recorded

const rounds: Record<string, Sample>[] = [];
const loads: number[] = [];
const cold: Awaited<ReturnType<typeof coldAttach>>[] = [];
for (let r = 1; r <= RUNS; r++) {
  const round: Record<string, Sample> = {};
  for (const v of variants) {
    const s = (round[v.name] = await v.run());
    const w = s.workload;
    const ev = s.events === undefined ? '' : `  events ${s.events} lost ${s.lost}`;
    const at = s.attachMs === undefined ? '' : `  attach ${s.attachMs.toFixed(0)} ms`;
    const cpu = s.consumerCpuS === undefined ? '' : `  consumer CPU ${s.consumerCpuS.toFixed(2)} s`;
    const irq = w.irqWork === undefined ? '' : `, irq_work ${w.irqWork}`;
    console.log(`run ${r}  ${v.name.padEnd(14)} ${w.elapsedS.toFixed(3)} s (CPU ${w.cpuS.toFixed(3)} s, preempted ${w.preempted}${irq})${ev}${at}${cpu}`);
  }
  rounds.push(round);
  loads.push(os.loadavg()[0]);
  if (variants.includes(gadgetRun)) cold.push(await coldAttach());
}
fs.rmSync(TMP, { recursive: true, force: true });

/** Median over rounds of a sample's value; undefined when no sample has one. */
function med(name: string, f: (s: Sample) => number | undefined): number | undefined {
  const vals = rounds.map((r) => r[name] && f(r[name])).filter((x): x is number => x !== undefined);
  return vals.length ? median(vals) : undefined;
}

/** Median over rounds of a variant's workload time divided by another's in the same round. */
function pairedRatio(name: string, over: string): number | undefined {
  const vals = rounds.filter((r) => r[name] && r[over]).map((r) => r[name].workload.elapsedS / r[over].workload.elapsedS);
  return vals.length ? median(vals) : undefined;
}

const summary = variants.map((v) => {
  const events = rounds.map((r) => r[v.name].events).filter((x): x is number => x !== undefined);
  const lost = rounds.map((r) => r[v.name].lost).filter((x): x is number => x !== undefined);
  const times = rounds.map((r) => r[v.name].workload.elapsedS);
  return {
    variant: v.name,
    what: v.what,
    workloadS: median(times),
    minS: Math.min(...times),
    maxS: Math.max(...times),
    workloadCpuS: med(v.name, (s) => s.workload.cpuS),
    preempted: med(v.name, (s) => s.workload.preempted),
    irqWork: med(v.name, (s) => s.workload.irqWork),
    overUntraced: pairedRatio(v.name, 'untraced'),
    overCReference: pairedRatio(v.name, 'C reference'),
    events: events.length ? median(events) : undefined,
    minEvents: events.length ? Math.min(...events) : undefined,
    lostMax: lost.length ? Math.max(...lost) : undefined,
    attachMs: med(v.name, (s) => s.attachMs),
    consumerCpuS: med(v.name, (s) => s.consumerCpuS),
    commandS: med(v.name, (s) => s.commandS),
  };
});

console.log(`\nmedians of ${RUNS} runs (ratios: median of per-round ratios); a traced run should see ${N} events`);
console.log('| variant | workload s (min–max) | workload CPU s | × untraced | × C ref | events (min) | lost (max) | attach ms | consumer CPU s |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const s of summary) {
  const ev = s.events === undefined ? '–' : `${s.events} (${s.minEvents})`;
  console.log(
    `| ${s.variant} | ${fmt(s.workloadS, 3)} (${fmt(s.minS, 3)}–${fmt(s.maxS, 3)}) | ${fmt(s.workloadCpuS, 3)} | ` +
      `${fmt(s.overUntraced, 2)} | ${fmt(s.overCReference, 2)} | ${ev} | ${s.lostMax ?? '–'} | ${fmt(s.attachMs, 0)} | ${fmt(s.consumerCpuS, 2)} |`,
  );
}
console.log(`1-min load average after each round: ${loads.map((l) => l.toFixed(2)).join(', ')} (other work on the machine skews every figure)`);

const coldMedian = cold.length
  ? {
      spawnToAttachedMs: median(cold.map((c) => c.spawnToAttachedMs)),
      sinceNodeStartMs: median(cold.map((c) => c.sinceNodeStartMs)),
      openSessionMs: median(cold.map((c) => c.openSessionMs)),
    }
  : undefined;
if (coldMedian) {
  console.log(
    `\nlibrary cold start (fresh node --import tsx bench/attach.ts) to all attached: ${fmt(coldMedian.spawnToAttachedMs, 0)} ms from spawn, ` +
      `${fmt(coldMedian.sinceNodeStartMs, 0)} ms from Node's start, of which openSession ${fmt(coldMedian.openSessionMs, 0)} ms`,
  );
}
const cliRun = summary.find((s) => s.variant === 'gadget-run CLI');
if (cliRun) {
  console.log(`CLI: command start to all attached ${fmt(cliRun.attachMs, 0)} ms (summary.attachedAfterMs), whole command ${fmt(cliRun.commandS, 2)} s`);
}

// the attach target is about the command a user types: the CLI when there is one
const gr = summary.find((s) => s.variant === 'gadget-run');
const startToAttachedMs = cliRun?.attachMs ?? coldMedian?.spawnToAttachedMs;
const allEvents = (s?: (typeof summary)[number]) => !s || (s.lostMax === 0 && s.minEvents === N);
const targets = gr && {
  zeroLost: allEvents(gr) && allEvents(cliRun),
  withinOneTenthOfC: gr.overCReference === undefined ? undefined : gr.overCReference <= 1.1,
  attachedWithinHalfSecond: startToAttachedMs === undefined ? undefined : startToAttachedMs <= 500,
};
if (targets) {
  const verdict = (ok?: boolean) => (ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED');
  console.log(`targets: zero lost, all ${N} events: ${verdict(targets.zeroLost)}; ` +
    `workload ≤ 1.1× C reference: ${verdict(targets.withinOneTenthOfC)}; ` +
    `start → attached ≤ 0.5 s: ${verdict(targets.attachedWithinHalfSecond)}`);
}

const results = {
  date: new Date().toISOString(),
  machine: { kernel: os.release(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, loadAverages: loads },
  n: N,
  runs: RUNS,
  ringBytes: RING_BYTES,
  summary,
  startToAttachedMs,
  coldAttach: { median: coldMedian, samples: cold },
  targets,
  rounds,
};
const out = path.join(ROOT, 'bench/results/latest.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
