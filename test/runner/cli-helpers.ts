/** Running the real CLI (bin/gadget-run) as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { destroyCgroup } from '../../src/runner/workload.ts';
import { cgroupsOf, leftBehind } from '../helpers/leaks.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/gadget-run');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /**
   * added to (or, with undefined values, removed from) this process's environment, which never
   * passes on this test run's SUDO_* variables: a workload would drop to that user
   */
  env?: Record<string, string | undefined>;
  /** a string only this run's workload carries in its command line, for the leak check */
  token?: string;
  /** the test leaves state behind on purpose (a SIGKILLed run): skip the leak check */
  leaves?: boolean;
  /** a command that execs the CLI after it (e.g. unshare … sh -c '… exec "$@"' sh): the CLI keeps its pid */
  wrap?: string[];
}

/**
 * Start the CLI. `done` resolves when it has exited, and rejects when it left
 * something behind: a process of its workload (by `token`) or a workload
 * cgroup carrying its pid.
 */
export function startCli(args: string[], opts: CliOptions = {}): { child: ChildProcess; done: Promise<CliResult>; stderrUntil(re: RegExp): Promise<string> } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SUDO_')));
  const [cmd, ...cmdArgs] = [...(opts.wrap ?? []), process.execPath, BIN, ...args];
  const child = spawn(cmd, cmdArgs, { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => {
    stderr += d;
    for (const w of waiters.splice(0)) {
      const m = w.re.exec(stderr);
      if (m) w.resolve(m[0]);
      else waiters.push(w);
    }
  });
  const closed = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  const done = closed.then((r) => {
    const left = opts.leaves || child.pid === undefined ? [] : leftBehind({ pid: child.pid, token: opts.token });
    if (left.length) throw new Error(`the CLI (exit ${r.code ?? r.signal}) left behind:\n  ${left.join('\n  ')}\n${r.stderr}`);
    return r;
  });
  done.catch(() => {}); // a test that never awaits done still gets its own failure, not an unhandled one
  return {
    child,
    done,
    stderrUntil(re) {
      const m = re.exec(stderr);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        closed.then((r) => reject(new Error(`CLI exited (${r.code}) before printing ${re}:\n${r.stderr}`)));
      });
    },
  };
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).done;
}

/**
 * Wait for the CLI to end, at most `ms`: a run that hangs fails the test
 * (and is SIGKILLed) instead of hanging the suite. Not a timing assert: `ms`
 * is generous, only the end matters.
 */
export async function endsWithin(cli: ReturnType<typeof startCli>, ms: number, what: string): Promise<CliResult> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  const r = await Promise.race([cli.done, hung]);
  clearTimeout(timer);
  if (r === 'hung') {
    cli.child.kill('SIGKILL');
    // leave no workload behind for the next tests
    for (const dir of cgroupsOf(cli.child.pid!)) await destroyCgroup(dir).catch(() => {});
    throw new Error(`still running ${ms / 1000} s after ${what}`);
  }
  return r;
}

export function tempDir(prefix = 'gadget-run-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeRecipe(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

export function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function readNdjsonFile(file: string): any[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

export const notRoot = process.getuid?.() !== 0 ? 'needs root to load BPF programs' : false;
