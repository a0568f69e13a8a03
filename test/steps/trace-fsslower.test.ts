import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { buildFixture } from '../helpers/fixtures.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run, uniqueCommCopy } from '../helpers/proc.ts';
import { stepContext, tempDir, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/fsslower'];

/** The file system type a path lives on: the longest mount point above it in /proc/self/mountinfo. */
function fsTypeOf(file: string): string {
  let best = { dir: '', type: '' };
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const dir = pre.split(' ')[4].replace(/\\040/g, ' ');
    const under = dir === '/' || file === dir || file.startsWith(`${dir}/`);
    if (under && dir.length >= best.dir.length) best = { dir, type: post.split(' ')[0] };
  }
  return best.type;
}

/** A tmpfs of our own, unmounted and removed after the test (after hooks run first-in first-out, so not via tempDir). */
function tmpfsDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
  t.after(() => {
    execFileSync('umount', [dir]);
    fs.rmdirSync(dir);
  });
  return dir;
}

function named(events: Event[], file: string): Event[] {
  return events.filter((e) => e.file === path.basename(file) || e.file === file);
}

const me = () => `pid==${process.pid}`;

describe('trace/fsslower', { skip: kernelSkip(def) }, () => {
  test('min_ms 0: open, write at an offset, read, fsync and fdatasync of one file, exactly', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    const data = Buffer.from('0123456789abcdef'); // N = 16 bytes
    const K = 4096 + 7;
    let fd = -1;
    const { events } = await traceWhile(def, stepContext(t, { filter: me(), params: { min_ms: 0 } }), () => {
      fd = fs.openSync(file, 'w+');
      assert.equal(fs.writeSync(fd, data, 0, data.length, K), data.length); // pwrite64
      assert.equal(fs.writeSync(fd, 'tail'), 4); // write(2) at f_pos 0
      assert.equal(fs.readSync(fd, Buffer.alloc(8), 0, 8, K + 2), 8); // pread64
      fs.fsyncSync(fd);
      fs.fdatasyncSync(fd);
      fs.closeSync(fd);
    });
    const mine = named(events, file);
    assert.deepEqual(mine.map((e) => e.op), ['O', 'W', 'W', 'R', 'F', 'F'], JSON.stringify(mine));
    const fsType = fsTypeOf(file);
    const comm = fs.readFileSync('/proc/self/comm', 'utf8').trim();
    const cgroup_id = Number(cgroupIdOf(cgroupDirOf(process.pid)));
    for (const e of mine) {
      assert.ok((e.latency_ns as number) > 0, `latency > 0: ${JSON.stringify(e)}`);
      assert.equal(e.latency_us, Math.floor((e.latency_ns as number) / 1000));
      assert.match(e.timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.deepEqual(
        [e.pid, e.tid, e.uid, e.gid, e.comm, e.fs, e.err, e.err_name, e.mntns_id, e.cgroup_id],
        [process.pid, process.pid, 0, 0, comm, fsType, 0, '', mntnsOf(process.pid), cgroup_id],
      );
    }
    const [open, pwrite, write, pread, fsync, fdatasync] = mine;
    assert.deepEqual([open.file, open.ret, open.bytes, open.offset], [file, fd, 0, 0]);
    assert.deepEqual([pwrite.file, pwrite.bytes, pwrite.offset, pwrite.ret], [path.basename(file), 16, K, 16]);
    assert.deepEqual([write.bytes, write.offset, write.ret], [4, 0, 4]);
    assert.deepEqual([pread.bytes, pread.offset, pread.ret], [8, K + 2, 8]);
    assert.deepEqual([fsync.file, fsync.ret, fsync.bytes, fsync.offset], [path.basename(file), 0, 0, 0]);
    assert.equal(fdatasync.ret, 0);
  });

  test('short-lived processes reading fd 0 and writing fd 1 after dup2 (dd if= of=, shell redirections): every call, exactly', async (t) => {
    // the fd is resolved through the task's file table (gadget_fd_file), as in top/file: a dup2'd
    // fd 0 or 1 whose original was closed is the same struct file
    const dir = tempDir(t);
    const { bin: dd, comm } = uniqueCommCopy(dir, 'dd');
    const input = path.join(dir, 'in.dat');
    fs.writeFileSync(input, Buffer.alloc(40_960, 0x62));
    const outputs = [path.join(dir, 'a.dat'), path.join(dir, 'b.dat')];
    const { events } = await traceWhile(def, stepContext(t, { filter: `comm==${comm}`, params: { min_ms: 0 } }), () => {
      execFileSync(dd, [`if=${input}`, `of=${outputs[0]}`, 'bs=4096', 'status=none']);
      execFileSync('sh', ['-c', 'exec "$0" bs=4096 status=none < "$1" > "$2"', dd, input, outputs[1]]);
    });
    const pids = [...new Set(events.map((e) => e.pid as number))];
    assert.equal(pids.length, 2, JSON.stringify(pids));
    const offsets = (n: number) => Array.from({ length: n }, (_, i) => i * 4096);
    for (const [i, pid] of pids.entries()) {
      const mine = events.filter((e) => e.pid === pid);
      const reads = mine.filter((e) => e.op === 'R' && e.file === 'in.dat');
      const writes = mine.filter((e) => e.op === 'W');
      // 10 reads of 4096 bytes and the one that found the end of the file
      assert.deepEqual(reads.map((e) => [e.bytes, e.offset]), [...offsets(10).map((o) => [4096, o]), [0, 40_960]], `pid ${pid}`);
      assert.deepEqual(writes.map((e) => [e.file, e.bytes, e.offset]), offsets(10).map((o) => [path.basename(outputs[i]), 4096, o]), `pid ${pid}`);
    }
  });

  test('an O_APPEND write reports where it landed, not the entry f_pos', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    fs.writeFileSync(file, 'x'.repeat(100));
    const { events } = await traceWhile(def, stepContext(t, { filter: me(), params: { min_ms: 0 } }), () => {
      fs.appendFileSync(file, 'abc');
    });
    const writes = named(events, file).filter((e) => e.op === 'W');
    assert.deepEqual(writes.map((e) => [e.bytes, e.offset]), [[3, 100]]);
  });

  test('a threshold: 10 s shows nothing of an fsync that min_ms 0 shows', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    const [all, slow] = await traceAllWhile(
      [[def, stepContext(t, { id: 'all', filter: me(), params: { min_ms: 0 } })], [def, stepContext(t, { id: 'slow', filter: me(), params: { min_ms: 10000 } })]],
      () => {
        const fd = fs.openSync(file, 'w');
        fs.writeSync(fd, 'data');
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      },
    );
    assert.deepEqual(named(all.events, file).map((e) => e.op), ['O', 'W', 'F']);
    assert.deepEqual(named(slow.events, file), []);
  });

  test('the default threshold is 10 ms: a page-cache read of a small file is not reported', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    fs.writeFileSync(file, 'cached');
    const [all, dflt] = await traceAllWhile(
      [[def, stepContext(t, { id: 'all', filter: me(), params: { min_ms: 0 } })], [def, stepContext(t, { id: 'default', filter: me() })]],
      () => assert.equal(fs.readFileSync(file, 'utf8'), 'cached'),
    );
    const reads = named(all.events, file).filter((e) => e.op === 'R');
    assert.ok(reads.length >= 1, 'the read happened');
    const fast = reads.filter((e) => (e.latency_ns as number) < 10e6);
    const dfltReads = named(dflt.events, file).filter((e) => e.op === 'R');
    assert.equal(dfltReads.length, reads.length - fast.length, 'default shows just the reads that took 10 ms or more');
  });

  test('fs: a tmpfs file and a root-fs file, each seen only by its own fs filter', async (t) => {
    const onTmpfs = path.join(tmpfsDir(t), uniqueToken('tmpfs'));
    const onRoot = path.join(tempDir(t), uniqueToken('root'));
    const rootType = fsTypeOf(onRoot);
    assert.equal(fsTypeOf(onTmpfs), 'tmpfs');
    assert.notEqual(rootType, 'tmpfs', `${onRoot} must not be on tmpfs for this test`);
    const params = (fsName?: string) => ({ min_ms: 0, ...(fsName === undefined ? {} : { fs: fsName }) });
    const steps: [GadgetDefinition, StepContext][] = [
      [def, stepContext(t, { id: 'any', filter: me(), params: params() })],
      [def, stepContext(t, { id: 'tmpfs', filter: me(), params: params('tmpfs') })],
      [def, stepContext(t, { id: 'root', filter: me(), params: params(rootType) })],
      [def, stepContext(t, { id: 'none', filter: me(), params: params('nomatchfs') })],
    ];
    const traced = await traceAllWhile(steps, () => {
      for (const file of [onTmpfs, onRoot]) {
        const fd = fs.openSync(file, 'w');
        fs.writeSync(fd, 'abc');
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      }
    });
    const ops = (i: number, file: string) => named(traced[i].events, file).map((e) => `${e.op}:${e.fs}`);
    assert.deepEqual(ops(0, onTmpfs), ['O:tmpfs', 'W:tmpfs', 'F:tmpfs']);
    assert.deepEqual(ops(0, onRoot), [`O:${rootType}`, `W:${rootType}`, `F:${rootType}`]);
    assert.deepEqual([ops(1, onTmpfs).length, ops(1, onRoot).length], [3, 0]);
    assert.deepEqual([ops(2, onTmpfs).length, ops(2, onRoot).length], [0, 3]);
    assert.ok(traced[1].events.every((e) => e.fs === 'tmpfs') && traced[2].events.every((e) => e.fs === rootType));
    assert.deepEqual(traced[3].events, []);
  });

  test('only regular files: a character device, a pipe and a socket are not reported', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    fs.writeFileSync(file, 'regular');
    const { events } = await traceWhile(def, stepContext(t, { filter: me(), params: { min_ms: 0 } }), async () => {
      const zero = fs.openSync('/dev/zero', 'r');
      fs.readSync(zero, Buffer.alloc(16));
      fs.closeSync(zero);
      // node reads the child's stdout through a pipe (or a socketpair) and the file through a regular fd
      assert.equal((await run('/bin/cat', [file])).stdout, 'regular');
      assert.equal(fs.readFileSync(file, 'utf8'), 'regular');
    });
    assert.ok(named(events, file).some((e) => e.op === 'R'), 'the regular file was read');
    assert.deepEqual(events.filter((e) => ['devtmpfs', 'pipefs', 'sockfs'].includes(e.fs as string) || e.file === '/dev/zero'), []);
  });

  test('non-matching filters see nothing of the event', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    const filters = [me(), 'comm==nomatch_xyz', 'pid==1', `tid==${process.pid + 1}`, 'uid==65534', `${me()},op==X`, `${me()},file~nomatch_xyz`];
    const steps = filters.map((filter, i): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: `f${i}`, filter, params: { min_ms: 0 } })]);
    const traced = await traceAllWhile(steps, () => {
      const fd = fs.openSync(file, 'w');
      fs.writeSync(fd, 'abc');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    });
    const counts = Object.fromEntries(filters.map((f, i) => [f, named(traced[i].events, file).length]));
    assert.deepEqual(counts, Object.fromEntries(filters.map((f, i) => [f, i === 0 ? 3 : 0])));
  });

  test('a workload cgroup: writes inside are seen, writes outside are not', async (t) => {
    const fixture = buildFixture(t, 'fs_writes');
    const dir = tempDir(t);
    const inside = path.join(dir, uniqueToken('inside'));
    const outside = path.join(dir, uniqueToken('outside'));
    const cg = freshCgroup(t, uniqueToken('cg'));
    let child!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level }, params: { min_ms: 0 } }), async () => {
      child = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3" 3 100', 'sh', cg.dir, fixture, inside]);
      assert.equal(child.code, 0);
      assert.equal((await run(fixture, [outside, '3', '100'])).code, 0);
    });
    const seen = named(events, inside);
    assert.deepEqual(seen.map((e) => [e.op, e.bytes, e.offset]), [['O', 0, 0], ['W', 100, 0], ['W', 100, 100], ['W', 100, 200], ['F', 0, 0]]);
    assert.ok(seen.every((e) => e.pid === child.pid && e.comm === 'fs_writes' && e.cgroup_id === Number(cg.id)));
    assert.deepEqual(named(events, outside), []);
  });
});
