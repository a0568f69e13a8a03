import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { TRACK_INTERVAL_MS } from '../../src/containers/selection.ts';
import { BpfObject } from '../../src/ebpf/object.ts';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';
import { gadgets } from '../../src/steps/index.ts';
import { NOTICE_RING_BYTES } from '../../src/steps/modes/profile.ts';
import { SLOT_BYTES } from '../../src/gadgets/traceloop.ts';
import { straceLine, straceText } from '../../src/gadgets/traceloop/strace.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { busyboxRootfs, containerName, containerSkip, startContainer } from '../helpers/containers.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { kernelSkip, objectPath } from '../helpers/kernel.ts';
import { readNdjsonFile, runCli, writeRecipe } from '../runner/cli-helpers.ts';
import { cgroupIdOf, freshCgroup, run } from '../helpers/proc.ts';
import { stepContext, tempDir, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets.traceloop;

/** Run syscall_crash in cgroup `dir` (the shell moves itself in, then execs it); it dies of SIGSEGV. */
async function crashIn(bin: string, dir: string, file: string, loops = 0): Promise<number> {
  const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3" "$4"', 'sh', dir, bin, file, String(loops)]);
  assert.equal(r.code, null, 'syscall_crash died of a signal (SIGSEGV)');
  return r.pid;
}

/** The rows of process `pid` from its first openat of `file` on: the known sequence. */
function sequenceOf(events: Event[], pid: number, file: string): Event[] {
  const mine = events.filter((e) => e.pid === pid);
  const start = mine.findIndex((e) => e.syscall === 'openat' && e.path === file);
  assert.ok(start >= 0, `the openat of ${file} is recorded: ${JSON.stringify(mine.slice(-8))}`);
  return mine.slice(start);
}

function assertSequence(seq: Event[], file: string, parent: number): void {
  assert.deepEqual(seq.map((e) => e.syscall), ['openat', 'write', 'close', 'getppid', 'openat'], JSON.stringify(seq));
  const fd = seq[0].ret as number;
  assert.ok(fd >= 3, `openat returned a descriptor: ${fd}`);
  assert.deepEqual(seq[0].args, [-100, file, 0o1101, 0o600]);
  const write = seq[1].args as unknown[];
  assert.deepEqual([write[0], write[2], seq[1].ret], [fd, 7, 7]);
  assert.deepEqual([seq[2].args, seq[2].ret], [[fd], 0]);
  assert.equal(seq[3].ret, parent);
  assert.deepEqual([seq[4].path, seq[4].ret, seq[4].err_name], [`${file}.missing/x`, -2, 'ENOENT']);
  for (let i = 1; i < seq.length; i++) assert.equal(seq[i].seq, (seq[i - 1].seq as number) + 1, 'consecutive in the cgroup');
}

describe('traceloop', { skip: kernelSkip(def) }, () => {
  test('a crashing workload: the last syscalls before its SIGSEGV, in order, with paths and return values; another cgroup is not in them', async (t: TestContext) => {
    const bin = compileFixture(t, 'syscall_crash');
    const dir = tempDir(t);
    const file = path.join(dir, uniqueToken('traceloop'));
    const otherFile = path.join(dir, uniqueToken('elsewhere'));
    const cg = freshCgroup(t, uniqueToken('traceloop-cg'));
    const other = freshCgroup(t, uniqueToken('traceloop-other'));
    let pid = 0;
    let shell = 0;
    const { outcome, events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      pid = await crashIn(bin, cg.dir, file);
      shell = await crashIn(bin, other.dir, otherFile);
    });
    assert.equal(outcome.lost, 0);
    assert.ok(events.every((e) => e.cgroup_id === Number(cg.id)), 'only the watched cgroup');
    assert.ok(!events.some((e) => e.pid === shell || String(e.path).startsWith(otherFile)), 'nothing of the other cgroup');
    const seq = sequenceOf(events, pid, file);
    // the shell's pid is the fixture's (exec), and its parent is this test process
    assertSequence(seq, file, process.pid);
    assert.equal(fs.readFileSync(file, 'utf8'), '1234567');
    const text = straceText(seq).trimEnd().split('\n');
    assert.match(text[0], new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{6} ${pid} syscall_crash: openat\\(AT_FDCWD, "${file}", O_WRONLY\\|O_CREAT\\|O_TRUNC, 0600\\) = \\d+$`));
    assert.match(text[1], /: write\(\d+, 0x[0-9a-f]+, 7\) = 7$/);
    assert.match(text[2], /: close\(\d+\) = 0$/);
    assert.match(text[3], new RegExp(`: getppid\\(\\) = ${process.pid}$`));
    assert.match(text[4], new RegExp(`: openat\\(AT_FDCWD, "${file}\\.missing/x", O_RDONLY\\) = -1 ENOENT$`));
  });

  test('more syscalls than slots: the last ones are kept, in order, none lost from the tail', async (t: TestContext) => {
    const bin = compileFixture(t, 'syscall_crash');
    const file = path.join(tempDir(t), uniqueToken('traceloop'));
    const cg = freshCgroup(t, uniqueToken('traceloop-cg'));
    const slots = 64;
    let pid = 0;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level }, params: { slots } }), async () => {
      pid = await crashIn(bin, cg.dir, file, 5000);
    });
    assert.equal(events.length, slots, 'the buffer is full, not more');
    const seqs = events.map((e) => e.seq as number);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[0] + i, `consecutive sequence numbers: ${seqs.join(',')}`);
    assert.ok(seqs[0] > 5000 - slots, `the oldest ones were overwritten: the first kept is #${seqs[0]}`);
    const seq = sequenceOf(events, pid, file);
    assertSequence(seq, file, process.pid);
    // everything before the sequence is the getppid loop
    assert.ok(events.slice(0, events.length - seq.length).every((e) => e.syscall === 'getppid' && e.ret === process.pid));
  });

  test('cgroups below the watched one are recorded, at 2 levels down and past the 16 the kernfs walk covers (the helper then); a sibling is not', async (t: TestContext) => {
    const bin = compileFixture(t, 'syscall_crash');
    const dir = tempDir(t);
    // the nested cgroups are removed bottom-up before the top one (t.after runs in registration order)
    const chain: string[] = [];
    t.after(() => { for (const d of [...chain].reverse()) fs.rmdirSync(d); });
    const cg = freshCgroup(t, uniqueToken('traceloop-cg'));
    const sibling = freshCgroup(t, uniqueToken('traceloop-sibling'));
    for (let depth = 1; depth <= 18; depth++) {
      chain.push(path.join(chain.at(-1) ?? cg.dir, `d${depth}`));
      fs.mkdirSync(chain.at(-1)!);
    }
    const near = chain[1];
    const deep = chain[17];
    const pids: Record<string, number> = {};
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      pids.near = await crashIn(bin, near, path.join(dir, 'near'));
      pids.deep = await crashIn(bin, deep, path.join(dir, 'deep'));
      pids.sibling = await crashIn(bin, sibling.dir, path.join(dir, 'sibling'));
    });
    assertSequence(sequenceOf(events, pids.near, path.join(dir, 'near')), path.join(dir, 'near'), process.pid);
    assertSequence(sequenceOf(events, pids.deep, path.join(dir, 'deep')), path.join(dir, 'deep'), process.pid);
    assert.deepEqual(new Set(events.map((e) => e.cgroup_id)), new Set([Number(cgroupIdOf(near)), Number(cgroupIdOf(deep))]), 'the two nested cgroups, each its own buffer');
    assert.ok(!events.some((e) => e.pid === pids.sibling), 'nothing of the sibling cgroup');
  });

  test('params.cgroups: 1 and a second cgroup of the workload: its syscalls are counted as lost, with a warning, and only the first one is recorded', async (t: TestContext) => {
    const bin = compileFixture(t, 'syscall_crash');
    const dir = tempDir(t);
    // the nested cgroup is removed before its parent (t.after runs in registration order)
    let second = '';
    t.after(() => fs.rmdirSync(second));
    const cg = freshCgroup(t, uniqueToken('traceloop-cg'));
    second = path.join(cg.dir, 'second');
    fs.mkdirSync(second);
    const pids: number[] = [];
    const { outcome, events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level }, params: { cgroups: 1 } }), async () => {
      pids.push(await crashIn(bin, cg.dir, path.join(dir, 'first')));
      pids.push(await crashIn(bin, second, path.join(dir, 'second')));
    });
    assertSequence(sequenceOf(events, pids[0], path.join(dir, 'first')), path.join(dir, 'first'), process.pid);
    assert.ok(events.every((e) => e.cgroup_id === Number(cg.id)) && !events.some((e) => e.pid === pids[1]), 'only the first cgroup');
    // at least the fixture's own five syscalls of the second one
    assert.ok(outcome.lost >= 5, `lost: ${outcome.lost}`);
    assert.deepEqual(outcome.warnings, [`${outcome.lost} syscalls were not recorded: more than 1 cgroups made syscalls (raise params.cgroups)`]);
  });

  test('params.syscalls: only those are recorded; an unknown name is an error naming it', async (t: TestContext) => {
    const bin = compileFixture(t, 'syscall_crash');
    const file = path.join(tempDir(t), uniqueToken('traceloop'));
    const cg = freshCgroup(t, uniqueToken('traceloop-cg'));
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level }, params: { syscalls: ['openat', 'close'] } }), async () => {
      await crashIn(bin, cg.dir, file, 10);
    });
    assert.ok(events.length >= 3);
    assert.ok(events.every((e) => e.syscall === 'openat' || e.syscall === 'close'), JSON.stringify(events.map((e) => e.syscall)));
    assert.deepEqual(events.filter((e) => String(e.path).startsWith(file)).map((e) => e.err_name), ['', 'ENOENT']);
    assert.throws(() => def.constants!({ syscalls: ['nosuchcall'] }), /"nosuchcall", which is not an x86-64 syscall/);
  });
});

describe('traceloop slots count against --limit-ring', () => {
  const recipe = (slots: number, cgroups: number) => `name: fr
duration: 1s
steps:
  - id: other
    gadget: trace/open
    buffer: 1MiB
  - id: recorder
    gadget: traceloop
    params: {slots: ${slots}, cgroups: ${cgroups}}
`;
  const MiB = 1024 ** 2;

  test('over the limit: refused naming the step, its sizes and what to lower; within it: planned with them counted', () => {
    // 4096 × 16 × 384 bytes = 24MiB of slots, + 8KiB for the cgroups, + the 256KiB notice ring; trace/open 1MiB
    assert.throws(() => parseRecipe(recipe(4096, 16), 'r.yaml', undefined, { ringBytes: 16 * MiB, outputBytes: 1024 * MiB }), (err: Error) => {
      assert.ok(err instanceof RecipeError);
      assert.deepEqual(err.message.split('\n'), [
        "r.yaml:4:3 steps: the steps' ring buffers and kernel maps take 25864KiB together; the limit is 16MiB (give steps a smaller buffer or smaller maps, or raise the limit with --limit-ring)",
        'r.yaml:9:13 steps[1].params: step recorder (traceloop) takes 24840KiB of them, 24584KiB for its slots (4096 slots × 16 cgroups × 384 bytes, and 512 bytes a cgroup); lower params.slots or params.cgroups',
      ]);
      return true;
    });
    const ok = parseRecipe(recipe(1024, 16), 'r.yaml', undefined, { ringBytes: 16 * MiB, outputBytes: 1024 * MiB });
    const step = ok.steps.find((s) => s.spec.id === 'recorder')!;
    assert.equal(step.ringBytes, 1024 * 16 * SLOT_BYTES + 16 * 512 + NOTICE_RING_BYTES);
    // the default limit (256MiB) refuses the largest slot array the params allow (65536 × 16 × 384 bytes = 384MiB)
    assert.throws(() => parseRecipe(recipe(65536, 16), 'r.yaml'), /steps\[1\]\.params: step recorder \(traceloop\) takes .* for its slots \(65536 slots × 16 cgroups/);
  });

  test('SLOT_BYTES is sizeof(struct tl_slot) in the object', () => {
    const obj = BpfObject.open(objectPath(def));
    try {
      assert.equal(obj.btf.struct('tl_slot').size, SLOT_BYTES);
    } finally {
      obj.close();
    }
  });

  test('the CLI: validate and run exit 2 with the message over the limit; within it the step runs', { skip: kernelSkip(def) }, async (t: TestContext) => {
    const dir = tempDir(t);
    const file = writeRecipe(dir, 'fr.yaml', `name: fr
run: /bin/true
steps:
  - id: recorder
    gadget: traceloop
    params: {slots: 2048}
    outputs: [recorder.ndjson]
`);
    // 2048 × 16 × 384 bytes = 12MiB of slots
    for (const command of ['validate', 'run']) {
      const r = await runCli([command, file, '--limit-ring', '8MiB', ...(command === 'run' ? ['--out', path.join(dir, 'refused')] : [])]);
      assert.equal(r.code, 2, `${command}: ${r.stderr}`);
      assert.match(r.stderr, /fr\.yaml:6:13 steps\[0\]\.params: step recorder \(traceloop\) takes \d+KiB of them, 12296KiB for its slots \(2048 slots × 16 cgroups × 384 bytes/, command);
    }
    assert.ok(!fs.existsSync(path.join(dir, 'refused')), 'the refused run started nothing');
    const out = path.join(dir, 'out');
    const r = await runCli(['run', file, '--limit-ring', '16MiB', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const rows = readNdjsonFile(path.join(out, 'recorder.ndjson'));
    assert.ok(rows.some((e) => e.comm === 'true' && e.syscall === 'exit_group'), `the workload's exit_group is recorded: ${JSON.stringify(rows.slice(-3))}`);
  });
});

describe('profile mode with a container scope', { skip: kernelSkip(def) }, () => {
  test('stop releases the container set before the object: no poll of a closed map afterwards (it threw EBADF from a timer)', async (t: TestContext) => {
    const cg = freshCgroup(t, uniqueToken('traceloop-cg'));
    const ctx = { ...stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), containers: { workload: true } };
    const { outcome } = await traceWhile(def, ctx, () => run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs"', 'sh', cg.dir]));
    assert.deepEqual(outcome.containers, [], 'the scope was kept and reported (no container ran)');
    // a timer left behind would poll the closed map within its interval and throw out of the test
    await new Promise((resolve) => setTimeout(resolve, 3 * TRACK_INTERVAL_MS));
  });
});

describe('traceloop with a container selection', { skip: kernelSkip(def) || containerSkip() }, () => {
  test('the selected container\'s syscalls are recorded, another container\'s are not', async (t: TestContext) => {
    const rootfs = busyboxRootfs(t);
    const a = startContainer(t, containerName('tl-a'), rootfs, ['/bin/sleep', '60']);
    const b = startContainer(t, containerName('tl-b'), rootfs, ['/bin/sleep', '60']);
    const token = uniqueToken('traceloop');
    fs.writeFileSync(path.join(rootfs, 'tmp', token), 'x');
    const ctx = { ...stepContext(t), containers: { selection: { container: a.name }, workload: false } };
    const { events } = await traceWhile(def, ctx, async () => {
      for (const name of [a.name, b.name]) execFileSync('podman', ['exec', name, '/bin/cat', `/tmp/${token}`], { stdio: 'ignore' });
    });
    const opens = events.filter((e) => e.syscall === 'open' || e.syscall === 'openat').filter((e) => e.path === `/tmp/${token}`);
    assert.equal(opens.length, 1, `one open of the file, by ${a.name}'s cat: ${JSON.stringify(opens)}`);
    assert.deepEqual([opens[0].comm, opens[0].ret !== null && (opens[0].ret as number) >= 0], ['cat', true]);
    assert.equal(new Set(events.map((e) => e.cgroup_id)).size, 1, 'one cgroup: the selected container\'s');
  });
});

describe('traceloop strace lines (no root)', () => {
  const row = (over: Record<string, unknown>) => ({ timestamp: '2026-12-01T16:35:01.123456789Z', pid: 10, tid: 10, comm: 'job', ret: 0, err_name: '', ...over });
  test('arguments by kind, the mode only with O_CREAT, addresses in hex, failures by name, unfinished calls', () => {
    assert.equal(straceLine(row({ syscall: 'openat', args: [-100, '/etc/hosts', 0o2000000, 0], ret: 3 })), '16:35:01.123456 10 job: openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3');
    assert.equal(straceLine(row({ syscall: 'openat', args: [5, 'a"b', 0o101, 0o644], ret: -13, err_name: 'EACCES' })), '16:35:01.123456 10 job: openat(5, "a\\"b", O_WRONLY|O_CREAT, 0644) = -1 EACCES');
    assert.equal(straceLine(row({ syscall: 'mmap', args: ['NULL', 4096, 3, 34, -1, 0], ret: 0x7f0000001000 })), '16:35:01.123456 10 job: mmap(NULL, 4096, 3, 34, -1, 0) = 0x7f0000001000');
    assert.equal(straceLine(row({ syscall: 'kill', args: [42, 9], tid: 11 })), '16:35:01.123456 10/11 job: kill(42, SIGKILL) = 0');
    assert.equal(straceLine(row({ syscall: 'exit_group', args: [139], ret: null })), '16:35:01.123456 10 job: exit_group(139) = ? <unfinished>');
    assert.equal(straceLine(row({ syscall: 'syscall_999', args: [1, 2, 3, 4, 5, '0xffffffffffffffff'] })), '16:35:01.123456 10 job: syscall_999(1, 2, 3, 4, 5, 0xffffffffffffffff) = 0');
  });
});
