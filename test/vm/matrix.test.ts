/**
 * The kernel matrix (issue 15): each kernel of test/vm/expected.json boots once under qemu
 * (scripts/vm.mjs; the host's own kernel runs on the host) and runs test/vm/guest.mjs there:
 * `gadget-run gadgets --json` and the tests of test/vm/selection.json. What each kernel
 * said is compared exactly with expected.json, per kernel and per test file, so any change
 * (a gadget that starts or stops loading, a known failure fixed) fails here until the
 * expectations say so. Results stay in build/vm-matrix/KERNEL/ for scripts/vm-table.mjs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
// the harness is the project's zx script; its functions are what the test calls
// @ts-expect-error -- a JavaScript module without types
import * as vm from '../../scripts/vm.mjs';
import { isRoot, NOT_ROOT, REPO } from '../helpers/kernel.ts';

interface KernelExpectation {
  /** id → "ok" | "unsupported: REASON" (as `gadgets --json` says it, exactly) */
  gadgets: Record<string, string>;
  /** file → test name (suite > test) → "pass" | "skip: REASON" | "fail: known — WHY" */
  tests: Record<string, Record<string, string>>;
  /** the quickstart's summary status, then its reasons after ": " ("passed") */
  quickstart: string;
}

/** a line of reporter.mjs: name is the path from the file's suite down (" > "), test the test's own */
interface TestLine { file: string | null; name: string; test: string; suite?: true; status: string; reason?: string; error?: string; ms: number }

const expected: { kernels: Record<string, KernelExpectation> } = JSON.parse(fs.readFileSync(path.join(REPO, 'test/vm/expected.json'), 'utf8'));
const selection: Record<string, string[]> = JSON.parse(fs.readFileSync(path.join(REPO, 'test/vm/selection.json'), 'utf8')).tests;
export const RESULTS = path.join(REPO, 'build', 'vm-matrix');
const HOST = os.release().split('.').slice(0, 2).join('.');
// GADGET_RUN_VM_KERNELS=6.1,6.12 runs those only (the others skip, saying so)
const ONLY = process.env.GADGET_RUN_VM_KERNELS?.split(',').map((k) => k.trim()).filter(Boolean);
// under TCG a kernel's share took about 6 min on a loaded 2-core machine (docs/kernels.md)
const PER_KERNEL_MS = 40 * 60_000;

/** Runs guest.mjs on `name` (in a guest, or here for the host's kernel) into a fresh results folder. */
async function runOn(name: string): Promise<string> {
  const dir = path.join(RESULTS, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  let boot: number | null = null;
  let code: number | null;
  if (name === HOST && !(name in vm.KERNELS)) {
    code = spawnSync(process.execPath, ['test/vm/guest.mjs', dir], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] }).status;
  } else {
    const r = await vm.run(name, ['node', 'test/vm/guest.mjs', dir], { cwd: REPO, shares: [dir], timeoutMs: PER_KERNEL_MS - 60_000, bootLog: path.join(dir, 'boot.log'), stdout: fs.createWriteStream(path.join(dir, 'guest.log')) });
    code = r.code;
    boot = r.bootMs;
  }
  fs.writeFileSync(path.join(dir, 'run.json'), `${JSON.stringify({ name, code, ms: Date.now() - t0, bootMs: boot, vm: name !== HOST || name in vm.KERNELS })}\n`);
  assert.equal(code, 0, `test/vm/guest.mjs on ${name} exited ${code} (its output: ${path.join(dir, 'guest.log')})`);
  return dir;
}

export function gadgetStatuses(dir: string): Record<string, string> {
  const g = JSON.parse(fs.readFileSync(path.join(dir, 'gadgets.json'), 'utf8'));
  assert.equal(g.exitCode, 0, `gadgets --json failed: ${g.stderr}`);
  return Object.fromEntries(g.gadgets.map((x: { id: string; supported: boolean; reason?: string }) => [x.id, x.supported ? 'ok' : `unsupported: ${withoutLogPath(x.reason)}`]));
}

/** The probe's reason names its log file by object hash: a rebuilt object is a new path, not a new reason (scripts/vm-table.mjs drops it too). */
export function withoutLogPath(reason = ''): string {
  return reason.replace(/; full log in \S+$/, '');
}

export function testLines(dir: string): TestLine[] {
  const file = path.join(dir, 'tests.ndjson');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** What a result line says, in expected.json's words; a failure matches any "fail: …" expectation. */
function outcome(line: TestLine, want: string | undefined): string {
  if (line.status === 'skip') return `skip: ${line.reason}`;
  if (line.status === 'fail') return want?.startsWith('fail') ? want : `fail: ${line.error}`;
  return line.status;
}

/**
 * The qemu kernels run only when asked (GADGET_RUN_VM_MATRIX=1), for now: after the probe and
 * container-tracking changes merged, the 6.1 guest soft-locked (both vCPUs stuck in node for
 * 600+ s) in trace/open's test; until that is understood the matrix stays out of CI rather than
 * hang it (docs/kernels.md, "Open").
 */
const VM_OPT_IN = 'qemu kernels are opt-in until the 6.1 soft lockup is understood: GADGET_RUN_VM_MATRIX=1 npm test (docs/kernels.md, "Open")';

function vmSkip(): string | false {
  if (!isRoot()) return NOT_ROOT;
  if (process.arch !== 'x64') return `Debian's amd64 kernels: this is ${process.arch}`;
  return false;
}

// npm test's --test-timeout (10 min) would end the suite itself otherwise
describe('kernel matrix', { skip: vmSkip(), concurrency: 1, timeout: PER_KERNEL_MS * Object.keys(expected.kernels).length }, () => {
  for (const [name, want] of Object.entries(expected.kernels)) {
    const inVm = name in vm.KERNELS;
    const skip = !inVm && name !== HOST ? `${name} is neither a kernel scripts/vm.mjs boots (${Object.keys(vm.KERNELS).join(', ')}) nor this host's (${HOST})`
      : ONLY && !ONLY.includes(name) ? `not in GADGET_RUN_VM_KERNELS=${ONLY.join(',')}`
      : inVm && process.env.GADGET_RUN_VM_MATRIX !== '1' ? VM_OPT_IN : false;
    test(`Linux ${name}${inVm ? ' (qemu)' : ' (this host)'}`, { skip, timeout: PER_KERNEL_MS }, async (t) => {
      const dir = await runOn(name);
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
