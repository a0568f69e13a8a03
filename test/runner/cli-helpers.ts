/** Running the real CLI (bin/gadget-run) as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
  /** added to (or, with undefined values, removed from) this process's environment */
  env?: Record<string, string | undefined>;
}

export function startCli(args: string[], opts: CliOptions = {}): { child: ChildProcess; done: Promise<CliResult>; stderrUntil(re: RegExp): Promise<string> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    child,
    done,
    stderrUntil(re) {
      const m = re.exec(stderr);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        done.then((r) => reject(new Error(`CLI exited (${r.code}) before printing ${re}:\n${r.stderr}`)));
      });
    },
  };
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).done;
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
