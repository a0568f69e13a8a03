/** What the benchmarks share: running a bench workload, waiting on tracers, CPU use, medians. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/** What a bench workload (bench/workload/*_loop.c) prints about itself. */
export interface WorkloadResult {
  /** wall time of its loop (CLOCK_MONOTONIC) */
  elapsedS: number;
  /** its user + system CPU time; BPF programs run in its context and count here */
  cpuS: number;
  /** involuntary context switches: how often something took its CPU away */
  preempted: number;
  /**
   * IRQ work interrupts on all CPUs while it ran (x86 "IWI" in
   * /proc/interrupts): a BPF_RB_FORCE_WAKEUP submit wakes the consumer through
   * irq_work, so this counts forced wakeups, plus the kernel's other irq_work
   */
  irqWork?: number;
}

export function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export function collect(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => (text += chunk));
  return () => text;
}

export function parseWorkload(text: string): WorkloadResult {
  const line = /^\{"n":.*$/m.exec(text);
  if (!line) throw new Error(`no workload result line in:\n${text}`);
  const r = JSON.parse(line[0]);
  return { elapsedS: r.elapsed_s, cpuS: r.cpu_s, preempted: r.preempted };
}

/** The "IWI" row of /proc/interrupts summed over CPUs; undefined where there is none (non-x86). */
export function irqWorkCount(): number | undefined {
  const row = fs.readFileSync('/proc/interrupts', 'utf8').split('\n').find((l) => l.trimStart().startsWith('IWI:'));
  return row?.trim().split(/\s+/).slice(1).filter((f) => /^\d+$/.test(f)).reduce((sum, f) => sum + Number(f), 0);
}

/** Run a bench workload binary to its end; its own figures plus the irq_work count around it. */
export async function runWorkload(binary: string, args: string[]): Promise<WorkloadResult> {
  const irq0 = irqWorkCount();
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = collect(child.stdout);
  const code = await exited(child);
  const irq1 = irqWorkCount();
  if (code !== 0) throw new Error(`${binary} exited with ${code}: ${out()}`);
  return { ...parseWorkload(out()), irqWork: irq0 === undefined || irq1 === undefined ? undefined : irq1 - irq0 };
}

/** Resolve once a stderr line matches `re`; reject if the child exits first. */
export function waitForLine(child: ChildProcess, re: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      text += chunk;
      if (re.test(text)) resolve();
    });
    child.once('close', (code) => reject(new Error(`${what} exited (${code}) before it was ready:\n${text}`)));
  });
}

export async function waitForFile(file: string, child: ChildProcess, what: string): Promise<void> {
  while (!fs.existsSync(file)) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before it was ready`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the parenthesised comm, which may itself hold spaces
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export const fmt = (x: number | undefined, digits: number) => (x === undefined ? '–' : x.toFixed(digits));

/** Each case once per run, in turn, `runs` times (a noisy machine's drift falls on every case alike); each run's CPU times on stderr. */
export async function alternate(cases: Record<string, () => Promise<WorkloadResult>>, runs: number): Promise<Record<string, WorkloadResult[]>> {
  const results: Record<string, WorkloadResult[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, fn] of Object.entries(cases)) results[name].push(await fn());
    console.error(`run ${i + 1}/${runs}: ` + Object.entries(results).map(([k, r]) => `${k} ${r[i].cpuS.toFixed(3)} s CPU`).join(', '));
  }
  return results;
}
