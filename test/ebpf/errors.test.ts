/**
 * Errors a person can act on: verifier rejections keep the whole log in a
 * file, a missing hook makes a gadget unsupported with the reason, and a
 * user without root is told so, while validation still works for them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BpfObject } from '../../src/ebpf/object.ts';
import { KernelError, UnsupportedError } from '../../src/ebpf/errors.ts';
import { checkSupport, gadgets, openSession } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { readableInstall, sharedTempDir } from '../helpers/install.ts';
import { ROOT, runCli, tempDir } from '../runner/cli-helpers.ts';

const notRoot = process.getuid?.() !== 0 ? 'needs root to load BPF programs' : false;

test('a verifier rejection names the object, keeps the full log in a file and shows its tail', { skip: notRoot }, async () => {
  const dir = tempDir();
  const obj = path.join(dir, 'verifier_reject.bpf.o');
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-I', path.join(ROOT, 'build/bpf'), '-c', path.join(ROOT, 'test/fixtures/verifier_reject.bpf.c'), '-o', obj]);
  const o = BpfObject.open(obj);
  try {
    await assert.rejects(o.load(), (err: unknown) => {
      assert.ok(err instanceof KernelError);
      assert.match(err.message, /^load verifier_reject\.bpf\.o: EACCES \(permission denied\) — the verifier rejected a program; full log in /);
      const logFile = /full log in (\S+)/.exec(err.message)?.[1];
      assert.ok(logFile && fs.existsSync(logFile), `the log file is named: ${err.message}`);
      const log = fs.readFileSync(logFile, 'utf8');
      assert.match(log, /invalid mem access 'map_value_or_null'/, 'the verifier said why');
      assert.match(err.message, /map_value_or_null/, 'the message shows the tail of the log');
      fs.rmSync(logFile);
      return true;
    });
  } finally {
    o.close();
  }
});

test('a gadget whose hook is missing is unsupported, with the hook named', { skip: notRoot }, async () => {
  const def: GadgetDefinition = {
    ...gadgets['trace/open'],
    id: 'trace/imaginary',
    requires: [{ tracepoint: 'syscalls/sys_enter_imaginary_call' }],
  };
  const { why } = checkSupport(def);
  assert.deepEqual(why, { kind: 'tracepoint', name: 'syscalls/sys_enter_imaginary_call' });
  await assert.rejects(
    openSession(def, {
      id: 'x', params: {}, filter: [], spoolPath: path.join(tempDir(), 'x.ndjson'), bootToWallNs: 0n,
      objectDir: path.join(ROOT, 'build/bpf'), options: { buffer: '1MiB' }, maxBytes: 1 << 30,
    }),
    (err: unknown) => err instanceof UnsupportedError && err.message === 'trace/imaginary: unsupported here — needs tracepoint syscalls/sys_enter_imaginary_call: this kernel does not have it',
  );
});

test('optional hooks that are missing leave their programs out, with a warning', { skip: notRoot }, () => {
  const def: GadgetDefinition = {
    ...gadgets['trace/open'],
    requires: [...gadgets['trace/open'].requires, { tracepoint: 'syscalls/sys_enter_imaginary_call', optional: true }],
  };
  const { why, missingOptional } = checkSupport(def);
  assert.equal(why, undefined);
  assert.deepEqual(missingOptional, ['syscalls/sys_enter_imaginary_call']);
});

test('without root: gadgets says why not, validate still works', { skip: process.getuid?.() !== 0 ? 'needs root to switch to an unprivileged user' : false }, async (t) => {
  // run the CLI as nobody from a copy of the CLI and of the recipe that nobody can read,
  // wherever this checkout lives (under /root, in a 0700 folder)
  const bin = readableInstall(t);
  const dir = sharedTempDir(t, 'gadget-run-nobody-');
  fs.chmodSync(dir, 0o777); // nobody writes its output here
  const recipe = path.join(dir, 'r.yaml');
  fs.writeFileSync(recipe, 'name: r\nrun: "true"\nsteps:\n  - id: a\n    gadget: trace/exec\nassertions:\n  - { name: nothing runs, expr: "$count(steps.a) = 0" }\n');
  fs.chmodSync(recipe, 0o644);
  const asNobody = (args: string[]) => execFileSync(process.execPath, [bin, ...args], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: dir } });
  const list = JSON.parse(asNobody(['gadgets', '--json']));
  for (const g of list) {
    assert.equal(g.supported, false, g.id);
    assert.match(g.reason, /needs root/);
  }
  assert.match(asNobody(['validate', recipe]), /r\.yaml: ok/);
  // a run says what to do, exits 3 (could not trace: the machine's fault, not the policy's),
  // and says nothing about assertions it could not evaluate
  const out = path.join(dir, 'out');
  let stdout = '';
  assert.throws(() => asNobody(['run', recipe, '--out', out]), (err: { status: number; stdout: string }) => ((stdout = err.stdout), err.status === 3));
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.status, 'could_not_trace');
  assert.equal(summary.steps[0].status, 'unsupported');
  assert.match(summary.steps[0].reason, /^not run: .*run as root/);
  assert.deepEqual(summary.assertions.map((a: { status: string }) => a.status), ['not_evaluated']);
  assert.doesNotMatch(stdout, /FAIL|PASS/);
  assert.match(stdout, /COULD NOT TRACE/);
});

test('runCli helper is wired to this checkout', async () => {
  const r = await runCli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
});
