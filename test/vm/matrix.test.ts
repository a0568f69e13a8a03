/**
 * The kernel matrix (issue 15): each kernel of test/vm/expected.json boots once under qemu
 * (scripts/vm.mjs; the host's own kernel runs on the host) and runs test/vm/guest.mjs there:
 * `gadget-run gadgets --json` and the tests of test/vm/selection.json. What each kernel
 * said is compared exactly with expected.json, per kernel and per test file, so any change
 * (a gadget that starts or stops loading, a known failure fixed) fails here until the
 * expectations say so. Results stay in build/vm-matrix/KERNEL/ for scripts/vm-table.mjs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
// the harness is the project's zx script; its functions are what the test calls
// @ts-expect-error -- a JavaScript module without types
import * as vm from '../../scripts/vm.mjs';
import { isRoot, NOT_ROOT, REPO } from '../helpers/kernel.ts';
import { gadgetStatuses, HISTORY, outcome, readRecord, RESULTS, testLines } from './results.ts';

const expected = readRecord();
const selection: Record<string, string[]> = JSON.parse(fs.readFileSync(path.join(REPO, 'test/vm/selection.json'), 'utf8')).tests;
const HOST = os.release().split('.').slice(0, 2).join('.');
// GADGET_RUN_VM_KERNELS=6.1,6.12 runs those only (the others skip, saying so)
const ONLY = process.env.GADGET_RUN_VM_KERNELS?.split(',').map((k) => k.trim()).filter(Boolean);
/**
 * The qemu kernels run by default (CI's `.ci/run` too); GADGET_RUN_VM_MATRIX=0 leaves them out (a
 * developer's quick `npm test`: the host's column still runs). A guest that locks up or stops its
 * heartbeat is killed at once with the reason (scripts/vm.mjs), not left to GUEST_MS.
 */
const OPT_OUT = process.env.GADGET_RUN_VM_MATRIX === '0';
/**
 * The guests run side by side, one vCPU each (GADGET_RUN_VM_SMP to change it): under TCG a vCPU
 * is a host thread, so two one-vCPU guests keep this machine's two cores busy without taking
 * each other's, and the matrix's qemu time is its slower kernel's rather than the sum
 * (docs/kernels.md, figures). The host's column runs after them, alone.
 */
const SMP = Number(process.env.GADGET_RUN_VM_SMP ?? 1);
/**
 * A kernel's whole run, from qemu's start to its end: at most 650 s over the runs measured on
 * this 2-core machine at load 8–20 (docs/kernels.md, figures, from build/vm-matrix/history.ndjson).
 * Three times that, so a busier machine is slow, not failed; a guest that hangs still ends the
 * matrix in bounded time, with its console (boot.log) kept.
 */
const GUEST_MS = 30 * 60_000;
/** Another guest on this machine (a developer's) holds the lock: waiting is not the kernel's time. */
const LOCK_WAIT_MS = 60 * 60_000;
const PER_KERNEL_MS = GUEST_MS + LOCK_WAIT_MS + 60_000;

/** The host's load average every 10 s while `work` runs: how busy the machine was during a measurement. */
async function underLoad<T>(work: Promise<T>): Promise<{ value: T; load: { min: number; max: number; mean: number } }> {
  const samples = [os.loadavg()[0]];
  const timer = setInterval(() => samples.push(os.loadavg()[0]), 10_000);
  try {
    const value = await work;
    samples.push(os.loadavg()[0]);
    const round = (x: number) => Math.round(x * 10) / 10;
    return { value, load: { min: round(Math.min(...samples)), max: round(Math.max(...samples)), mean: round(samples.reduce((a, b) => a + b, 0) / samples.length) } };
  } finally {
    clearInterval(timer);
  }
}

/** What vm.run resolves with (scripts/vm.mjs), and what onHost has of it. */
interface RunResult { code: number | null; ms: number; bootMs?: number | null; waitedMs?: number; accel?: string; smp?: number; kernel?: string }

/** guest.mjs on the host itself, for the host's own kernel: its exit code and how long it took. */
function onHost(dir: string): Promise<RunResult> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['test/vm/guest.mjs', dir], { cwd: REPO, stdio: ['ignore', fs.openSync(path.join(dir, 'guest.log'), 'w'), 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), GUEST_MS);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: Date.now() - t0 });
    });
  });
}

/** Runs guest.mjs on `name` (in a guest, or here for the host's kernel) into a fresh results folder; its timings join the history. */
async function runOn(name: string, together: string[] = []): Promise<string> {
  const dir = path.join(RESULTS, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const inVm = name in vm.KERNELS;
  const started = new Date().toISOString();
  const { value: r, load } = await underLoad<RunResult>(inVm
    ? vm.run(name, ['node', 'test/vm/guest.mjs', dir], { cwd: REPO, shares: [dir], smp: SMP, timeoutMs: GUEST_MS, maxWaitMs: LOCK_WAIT_MS, bootLog: path.join(dir, 'boot.log'), stdout: fs.createWriteStream(path.join(dir, 'guest.log')) })
    : onHost(dir));
  const times = fs.existsSync(path.join(dir, 'times.json')) ? JSON.parse(fs.readFileSync(path.join(dir, 'times.json'), 'utf8')) : {};
  const run = {
    name, code: r.code, ms: r.ms, bootMs: r.bootMs ?? null, waitedMs: r.waitedMs ?? 0, vm: inVm,
    where: inVm ? `qemu ${r.accel}, ${r.smp} vCPU${together.length > 1 ? `, ${together.length} guests side by side` : ''}` : 'host', release: r.kernel ?? os.release(),
    // the guests started together (their batch's wall time is the matrix's qemu time: scripts/vm-table.mjs)
    ...(together.length > 1 ? { batch: together.join('+'), startedAt: started } : {}),
    at: new Date().toISOString(), cpus: os.cpus().length, load,
  };
  fs.writeFileSync(path.join(dir, 'run.json'), `${JSON.stringify(run)}\n`);
  fs.appendFileSync(HISTORY, `${JSON.stringify({ ...run, gadgetsMs: times.gadgets, testsMs: times.tests, quickstartMs: times.quickstart, jobMs: times.all })}\n`);
  assert.equal(r.code, 0, `test/vm/guest.mjs on ${name} exited ${r.code} (its output: ${path.join(dir, 'guest.log')})`);
  return dir;
}

function vmSkip(): string | false {
  if (!isRoot()) return NOT_ROOT;
  if (process.arch !== 'x64') return `Debian's amd64 kernels: this is ${process.arch}`;
  return false;
}

function skipOf(name: string): string | false {
  const inVm = name in vm.KERNELS;
  return !inVm && name !== HOST ? `${name} is neither a kernel scripts/vm.mjs boots (${Object.keys(vm.KERNELS).join(', ')}) nor this host's (${HOST})`
    : ONLY && !ONLY.includes(name) ? `not in GADGET_RUN_VM_KERNELS=${ONLY.join(',')}`
    : inVm && OPT_OUT ? 'GADGET_RUN_VM_MATRIX=0: the qemu kernels are left out' : false;
}

/** Every qemu kernel's run, all started at once by the first kernel's test; each test then awaits its own. */
let guests: Map<string, Promise<string>> | undefined;
function resultsOf(name: string): Promise<string> {
  if (!(name in vm.KERNELS)) return runOn(name);
  if (!guests) {
    const together = Object.keys(expected.kernels).filter((k) => k in vm.KERNELS && !skipOf(k));
    guests = new Map(together.map((k) => [k, runOn(k, together)]));
    // a kernel whose run failed while another's test was waiting: its own test reports it
    for (const p of guests.values()) p.catch(() => {});
  }
  return guests.get(name)!;
}

// the qemu kernels come first in expected.json: their runs start together, and the host's column runs after them
// npm test's --test-timeout (10 min) would end the suite itself otherwise
describe('kernel matrix', { skip: vmSkip(), concurrency: 1, timeout: PER_KERNEL_MS * Object.keys(expected.kernels).length }, () => {
  for (const [name, want] of Object.entries(expected.kernels)) {
    const inVm = name in vm.KERNELS;
    test(`Linux ${name}${inVm ? ' (qemu)' : ' (this host)'}`, { skip: skipOf(name), timeout: PER_KERNEL_MS }, async (t) => {
      const dir = await resultsOf(name);
      await t.test('gadgets --json: ok or unsupported with its reason, per gadget', () => {
        assert.deepEqual(gadgetStatuses(dir), want.gadgets);
      });
      const lines = testLines(dir);
      for (const file of Object.keys(selection)) {
        await t.test(file, () => {
          const mine = lines.filter((l) => l.file === file);
          const wanted = want.tests[file] ?? {};
          const got = Object.fromEntries(mine.map((l) => [l.name, outcome(l, wanted[l.name])]));
          assert.deepEqual(got, wanted, `${name}, ${file}`);
        });
      }
      await t.test('the quickstart recipe', () => {
        const qs = JSON.parse(fs.readFileSync(path.join(dir, 'quickstart.json'), 'utf8'));
        assert.equal([qs.status, ...qs.reasons].join(': '), want.quickstart, qs.stderr);
      });
      await t.test('every chosen test ran (or skipped with a reason), none more', () => {
        const chosen = Object.entries(selection).flatMap(([file, names]) => names.map((n) => `${file}: ${n}`)).sort();
        // suites that failed as a whole (a timeout) are not tests of the selection
        const ran = lines.filter((l) => l.file && l.status !== 'skip' && !l.suite).map((l) => `${l.file}: ${l.test}`).sort();
        const skippedFiles = new Set(lines.filter((l) => l.status === 'skip').map((l) => l.file));
        assert.deepEqual(ran, chosen.filter((c) => !skippedFiles.has(c.slice(0, c.indexOf(':')))), 'selection.json names a test that does not exist, or a name matched twice');
      });
    });
  }
});
