#!/usr/bin/env node
// The kernel matrix's job on one kernel (in a guest of scripts/vm.mjs, or on the host for
// its own column): what `gadget-run gadgets --json` says, and the chosen kernel tests
// (selection.json), then the quickstart recipe (host only), into OUTDIR: kernel.json, gadgets.json,
// tests.ndjson, quickstart.json, times.json.
// Test failures are results, not errors: the host compares them with expected.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const out = path.resolve(process.argv[2] ?? '');
if (!process.argv[2] || !fs.statSync(out, { throwIfNoEntry: false })?.isDirectory()) {
  console.error('usage: test/vm/guest.mjs OUTDIR (an existing folder)');
  process.exit(2);
}
const selection = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/vm/selection.json'), 'utf8')).tests;
const times = {};
const timed = (what, fn) => {
  const t0 = Date.now();
  try {
    return fn();
  } finally {
    times[what] = Date.now() - t0;
  }
};
const write = (name, value) => fs.writeFileSync(path.join(out, name), `${JSON.stringify(value, null, 2)}\n`);

const start = Date.now();
write('kernel.json', { release: os.release(), cpus: os.cpus().length });

// tsx's cache of compiled TypeScript (keyed by content): the host's spares the guest two
// minutes of compiling src/ and the tests under TCG. Bound read-only, not copied: it holds
// every worktree's entries (copying took 1-2 min), and tsx ignores a cache write that fails.
const hostTsx = path.join('/run/vm-host', os.tmpdir(), `tsx-${process.getuid()}`);
const tsx = path.join(os.tmpdir(), `tsx-${process.getuid()}`);
if (fs.existsSync(hostTsx) && !fs.existsSync(tsx)) {
  fs.mkdirSync(tsx);
  const bind = spawnSync('mount', ['--bind', hostTsx, tsx], { encoding: 'utf8' });
  if (bind.status !== 0) console.error(`guest: could not bind the host's tsx cache (${bind.stderr.trim()}): compiling afresh`);
}

// the block-io tests make loop devices; the kernel only loads the module for a node that exists
const loop = fs.existsSync('/sys/module/loop') ? { status: 0 } : spawnSync('modprobe', ['loop'], { encoding: 'utf8' });
if (loop.status !== 0) console.error(`guest: modprobe loop failed (${loop.stderr.trim()}): the block-io tests will say so`);

const gadgets = timed('gadgets', () => spawnSync(path.join(ROOT, 'bin/gadget-run'), ['gadgets', '--json'], { cwd: ROOT, encoding: 'utf8' }));
write('gadgets.json', { exitCode: gadgets.status, stderr: gadgets.stderr, gadgets: gadgets.status === 0 ? JSON.parse(gadgets.stdout) : null });

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const patterns = Object.values(selection).flat().map((name) => `--test-name-pattern=^${escape(name)}$`);
const tests = timed('tests', () => spawnSync(process.execPath, [
  '--import', 'tsx',
  '--test-reporter', './test/vm/reporter.mjs', '--test-reporter-destination', path.join(out, 'tests.ndjson'),
  '--test-reporter', 'spec', '--test-reporter-destination', 'stdout',
  ...patterns, 'test/vm/run-files.mjs', ...Object.keys(selection),
], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_TEST_CONTEXT: undefined } }));
// the README's first command, on the host's column only: it tests no more of the kernel than the
// gadget tests do, and costs a guest under TCG 80 s (selection.json's why)
const inGuest = fs.existsSync('/run/vm-host');
write('quickstart.json', inGuest
  ? { exitCode: null, status: 'not run', reasons: ["the host's column runs it (kernel-independent; 80 s of a guest's time under TCG)"], stderr: '' }
  : quickstart());

function quickstart() {
  const qsOut = fs.mkdtempSync(path.join(os.tmpdir(), 'quickstart-'));
  const qs = timed('quickstart', () => spawnSync(path.join(ROOT, 'bin/gadget-run'), ['run', 'recipes/quickstart.yaml', '--out', qsOut], { cwd: ROOT, encoding: 'utf8' }));
  const qsSummary = fs.existsSync(path.join(qsOut, 'summary.json')) ? JSON.parse(fs.readFileSync(path.join(qsOut, 'summary.json'), 'utf8')) : null;
  return { exitCode: qs.status, status: qsSummary?.status ?? null, reasons: qsSummary?.reasons ?? [], stderr: qs.stderr.slice(-2000) };
}

write('times.json', { ...times, all: Date.now() - start, testsExit: tests.status, testsSignal: tests.signal });
