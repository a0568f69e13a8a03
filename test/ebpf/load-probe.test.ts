/**
 * Probes that do not lie (issue 15): a gadget whose object does not load on
 * this kernel is `unsupported` with libbpf's reason — in `gadgets`, and in a
 * run before its workload starts — and the answer is cached per kernel build
 * and object content, in private files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { sha256 } from '../../src/ebpf/core-btf.ts';
import { kernelKey } from '../../src/ebpf/kernel-btf.ts';
import { UnsupportedError } from '../../src/ebpf/errors.ts';
import { forgetProbes, probeObjectLoad } from '../../src/ebpf/load-probe.ts';
import { gadgets, openSession, probeSupport } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { createWorkloadCgroup, destroyCgroup } from '../../src/runner/workload.ts';
import { bpfFds, isRoot, NOT_ROOT, OBJECT_DIR, objectDir, REPO } from '../helpers/kernel.ts';
import { runCli } from '../runner/cli-helpers.ts';

const skip = isRoot() ? false : NOT_ROOT;

function tempDir(t: import('node:test').TestContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** test/fixtures/NAME.bpf.c compiled as `as` into `dir` (CO-RE, with BTF, as bpf/Makefile builds gadgets). */
function compileFixture(name: string, dir: string, as = `${name}.bpf.o`): string {
  const out = path.join(dir, as);
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-I', objectDir(), '-c', path.join(REPO, 'test/fixtures', `${name}.bpf.c`), '-o', out]);
  return out;
}

/** A private probe cache for the test, through the env override. */
function useCache(t: import('node:test').TestContext): string {
  const root = path.join(tempDir(t, 'gadget-run-probes-'), 'cache');
  const before = process.env.GADGET_RUN_PROBE_CACHE;
  process.env.GADGET_RUN_PROBE_CACHE = root;
  forgetProbes();
  t.after(() => {
    if (before === undefined) delete process.env.GADGET_RUN_PROBE_CACHE;
    else process.env.GADGET_RUN_PROBE_CACHE = before;
    forgetProbes();
  });
  return root;
}

const KSYM_REFUSAL = "extern (func ksym) 'gadget_run_no_such_kfunc': not found in kernel or module BTFs";

test('an object needing a kfunc this kernel lacks: unsupported with libbpf\'s words, cached, private', { skip }, async (t) => {
  const cache = useCache(t);
  const dir = tempDir(t, 'gadget-run-objects-');
  compileFixture('missing_ksym', dir);
  const def: GadgetDefinition = { ...gadgets['trace/open'], id: 'test/kfunc', object: 'missing_ksym.bpf.o' };

  const { why } = await probeSupport(def, dir);
  assert.ok(why?.kind === 'load', `unsupported by its load: ${JSON.stringify(why)}`);
  assert.equal(why.object, 'missing_ksym.bpf.o');
  assert.equal(why.verifier, false);
  assert.deepEqual(why.detail, [KSYM_REFUSAL]);

  const kernelDir = path.join(cache, kernelKey());
  const sha = sha256(path.join(dir, 'missing_ksym.bpf.o'));
  const record = path.join(kernelDir, `${sha}.json`);
  assert.equal(fs.statSync(kernelDir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(record).mode & 0o777, 0o600);
  assert.equal(why.log, path.join(kernelDir, `${sha}.log`), 'the full log is kept beside the record');
  assert.match(fs.readFileSync(why.log!, 'utf8'), /gadget_run_no_such_kfunc/);

  // a run's preparation refuses it the same way, before anything is attached
  await assert.rejects(
    openSession(def, {
      id: 'x', params: {}, filter: [], spoolPath: path.join(dir, 'x.ndjson'), bootToWallNs: 0n,
      objectDir: dir, options: {}, maxBytes: 1 << 20,
    }),
    (err: unknown) => {
      assert.ok(err instanceof UnsupportedError, String(err));
      assert.equal(err.reason.kind, 'load');
      assert.equal(err.message, `test/kfunc: unsupported here — needs its object missing_ksym.bpf.o to load: ${KSYM_REFUSAL}; libbpf refused it on this kernel (EINVAL); full log in ${why.log}`);
      return true;
    },
  );
});

test('a verifier rejection: unsupported, naming the program and the verifier\'s complaint', { skip }, async (t) => {
  useCache(t);
  const dir = tempDir(t, 'gadget-run-objects-');
  compileFixture('verifier_reject', dir);
  const def: GadgetDefinition = { ...gadgets['trace/open'], id: 'test/reject', object: 'verifier_reject.bpf.o' };
  const { why } = await probeSupport(def, dir);
  assert.ok(why?.kind === 'load', JSON.stringify(why));
  assert.equal(why.verifier, true);
  assert.equal(why.program, 'count_getppid');
  assert.equal(why.errno, os.constants.errno.EACCES);
  assert.deepEqual(why.detail, ["program count_getppid: R0 invalid mem access 'map_value_or_null'"]);
});

test('the cache: a miss loads, a hit does not; another build of the object, a record others may write, or off: loaded again', { skip }, async (t) => {
  const cache = useCache(t);
  const dir = tempDir(t, 'gadget-run-objects-');
  const file = path.join(dir, 'trace_open.bpf.o');
  fs.copyFileSync(path.join(objectDir(), 'trace_open.bpf.o'), file);

  const fdsBefore = bpfFds().length;
  assert.deepEqual(await probeObjectLoad(file), { source: 'loaded' });
  assert.equal(bpfFds().length, fdsBefore, 'the probe closed everything it loaded');
  forgetProbes();
  assert.deepEqual(await probeObjectLoad(file), { source: 'cache' });
  assert.deepEqual(await probeObjectLoad(file), { source: 'cache' }, 'and once per process');
  assert.equal(fs.statSync(path.join(cache, 'digests.json')).mode & 0o777, 0o600, 'the remembered hashes are private too');

  // the same path, other content: the content hash keys the record, not the path or mtime
  forgetProbes();
  compileFixture('verifier_reject', dir, 'trace_open.bpf.o');
  const other = await probeObjectLoad(file);
  assert.equal(other.source, 'loaded');
  assert.equal(other.why?.kind === 'load' && other.why.verifier, true);

  // a record someone else could have written is not believed
  forgetProbes();
  const record = path.join(cache, kernelKey(), `${sha256(file)}.json`);
  fs.writeFileSync(record, JSON.stringify({ ...JSON.parse(fs.readFileSync(record, 'utf8')), reason: undefined }));
  fs.chmodSync(record, 0o666);
  const untrusted = await probeObjectLoad(file);
  assert.equal(untrusted.source, 'loaded');
  assert.equal(untrusted.why?.kind === 'load' && untrusted.why.verifier, true, 'the tampered "it loads" was not taken');
  assert.equal(fs.statSync(record).mode & 0o777, 0o600, 'and it was written again, privately');

  // nor is a refusal of a shape probe() never writes
  forgetProbes();
  fs.writeFileSync(record, JSON.stringify({ ...JSON.parse(fs.readFileSync(record, 'utf8')), reason: { kind: 'load', object: 'x', errno: 22, verifier: false, detail: 'not a list' } }));
  assert.equal((await probeObjectLoad(file)).source, 'loaded');

  // different optional tracepoints missing: a different question
  forgetProbes();
  assert.equal((await probeObjectLoad(file, ['syscalls/sys_enter_imaginary'])).source, 'loaded');

  forgetProbes();
  process.env.GADGET_RUN_PROBE_CACHE = 'off';
  fs.rmSync(cache, { recursive: true });
  const off = await probeObjectLoad(file);
  assert.equal(off.source, 'loaded');
  assert.equal(fs.existsSync(cache), false, 'off writes nothing');
  const log = off.why?.kind === 'load' ? off.why.log : undefined;
  assert.ok(log?.startsWith(os.tmpdir()), 'the refusal\'s log stays where the load left it');
  fs.rmSync(log!);
});

test('a missing object is unsupported, saying where it was looked for and how to build it', { skip }, async (t) => {
  useCache(t);
  const dir = tempDir(t, 'gadget-run-objects-');
  const { why } = await probeSupport(gadgets['trace/open'], dir);
  assert.deepEqual(why, { kind: 'no-object', object: 'trace_open.bpf.o', dir });
});

test('gadgets --json and run with an object that does not load: unsupported with libbpf\'s reason, the workload never started (exit 3)', { skip }, async (t) => {
  const cache = path.join(tempDir(t, 'gadget-run-probes-'), 'cache');
  const dir = tempDir(t, 'gadget-run-objects-');
  for (const f of fs.readdirSync(objectDir()).filter((f) => f.endsWith('.bpf.o'))) fs.copyFileSync(path.join(OBJECT_DIR, f), path.join(dir, f));
  // trace/exec's object replaced by one that needs a kfunc no kernel has
  compileFixture('missing_ksym', dir, 'trace_exec.bpf.o');
  const env = { GADGET_RUN_PROBE_CACHE: cache };

  const listed = await runCli(['gadgets', 'trace/exec', '--json', '--objects', dir], { env });
  assert.equal(listed.code, 0, listed.stderr);
  const row = JSON.parse(listed.stdout);
  assert.equal(row.supported, false);
  assert.equal(row.why.kind, 'load');
  assert.equal(row.why.hook, 'its object trace_exec.bpf.o to load');
  assert.equal(row.why.reason, KSYM_REFUSAL);
  assert.match(row.reason, /^trace\/exec: unsupported here — needs its object trace_exec\.bpf\.o to load: extern \(func ksym\)/);

  const work = tempDir(t, 'gadget-run-run-');
  const marker = path.join(work, 'started');
  const recipe = path.join(work, 'r.yaml');
  fs.writeFileSync(recipe, `name: r\nrun: touch ${marker}\nsteps:\n  - id: execs\n    gadget: trace/exec\n`);
  const out = path.join(work, 'out');
  const run = await runCli(['run', recipe, '--out', out, '--objects', dir], { env });
  assert.equal(run.code, 3, run.stdout + run.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.status, 'could_not_trace');
  assert.equal(summary.steps[0].status, 'unsupported');
  assert.equal(summary.steps[0].reason, row.reason, 'the same words as gadgets');
  assert.deepEqual(summary.steps[0].why, row.why, 'and the same data');
  assert.equal(fs.existsSync(marker), false, 'the workload did not start');
});

test('every gadget gadgets --json calls ok here opens: loaded, verified and attached', { skip, timeout: 300_000 }, async (t) => {
  const cache = path.join(tempDir(t, 'gadget-run-probes-'), 'cache');
  const listed = await runCli(['gadgets', '--json', '--objects', objectDir()], { env: { GADGET_RUN_PROBE_CACHE: cache } });
  assert.equal(listed.code, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as { id: string; supported: boolean; reason?: string; why?: { hook: string } }[];
  assert.equal(rows.length, Object.keys(gadgets).length);
  for (const r of rows.filter((r) => !r.supported)) assert.ok(r.why?.hook && r.reason, `${r.id} says why: ${JSON.stringify(r)}`);
  const dir = tempDir(t, 'gadget-run-spools-');
  // gadgets that act on a workload's cgroup (audit/egress, advise/egress) attach to one of their own
  const cgroup = createWorkloadCgroup('load-probe');
  t.after(() => destroyCgroup(cgroup.path));
  for (const r of rows.filter((r) => r.supported)) {
    const def = (gadgets as Record<string, GadgetDefinition>)[r.id];
    const session = await openSession(def, {
      id: r.id.replace('/', '_'), params: {}, filter: [], spoolPath: path.join(dir, `${r.id.replace('/', '_')}.ndjson`),
      bootToWallNs: 0n, objectDir: objectDir(), options: {}, maxBytes: 1 << 20,
      // (on the cgroup root, judging the workload and the containers it starts: they need that scope)
      ...('cgroupPrograms' in def && def.cgroupPrograms ? { cgroup: { id: cgroup.id, level: cgroup.level }, containers: { workload: true } } : {}),
    });
    session.start();
    // a snapshot attaches its iterator when its moment comes (delay 0: at start)
    if (def.mode === 'snapshot') await session.finished;
    else assert.ok(session.attached > 0, `${r.id}: attached`);
    const outcome = await session.stop();
    assert.ok(!outcome.notTaken, `${r.id}: the snapshot was taken`);
  }
});
