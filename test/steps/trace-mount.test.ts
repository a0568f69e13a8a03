import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { buildFixture } from '../helpers/fixtures.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, tempDir, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/mount'];
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_REC = 0x4000;
const MS_PRIVATE = 0x40000;
const MNT_DETACH = 0x2;
const ENOENT = 2;
const ENODEV = 19;

/** The fixture (mount_loop COUNT DIR SOURCE [FSTYPE] [new]) and a mount point for it. */
function setup(t: TestContext): { bin: string; dir: string; token: string } {
  return { bin: buildFixture(t, 'mount_loop'), dir: tempDir(t), token: uniqueToken('tok') };
}

/** The fields a test compares exactly (timestamp and latency vary; latency is checked > 0 for all). */
function shape(e: Event): Event {
  assert.ok((e.latency as number) > 0, `latency > 0: ${JSON.stringify(e)}`);
  const { timestamp, latency, pid, tid, uid, gid, comm, mntns_id, cgroup_id, ...rest } = e;
  return rest;
}

const fromPid = (events: Event[], pid: number) => events.filter((e) => e.pid === pid);

describe('trace/mount', { skip: kernelSkip(def) }, () => {
  test('mount(2) of a tmpfs and umount2: every call, exact, in the fixture\'s own mount namespace', async (t) => {
    const { bin, dir, token } = setup(t);
    let child!: Awaited<ReturnType<typeof run>>;
    const { outcome, events } = await traceWhile(def, stepContext(t, { filter: 'comm==mount_loop' }), async () => {
      child = await run(bin, ['1', dir, token]);
    });
    assert.equal(child.code, 0);
    assert.equal(outcome.events, events.length);
    const mine = fromPid(events, child.pid);
    assert.deepEqual(mine.map(shape), [
      { operation: 'mount', fs: '', source: 'none', target: '/', flags: MS_REC | MS_PRIVATE, flag_names: 'MS_REC|MS_PRIVATE', data: '', ret: 0, err_name: '' },
      { operation: 'mount', fs: 'tmpfs', source: token, target: dir, flags: MS_NOSUID | MS_NODEV, flag_names: 'MS_NOSUID|MS_NODEV', data: 'size=1m', ret: 0, err_name: '' },
      { operation: 'umount', fs: '', source: '', target: dir, flags: MNT_DETACH, flag_names: 'MNT_DETACH', data: '', ret: 0, err_name: '' },
    ]);
    const e = mine[1];
    assert.deepEqual([e.tid, e.uid, e.gid, e.comm, e.cgroup_id], [child.pid, 0, 0, 'mount_loop', Number(cgroupIdOf(cgroupDirOf(process.pid)))]);
    // unshare(CLONE_NEWNS) came first: every call is in the fixture's new namespace
    assert.notEqual(e.mntns_id, mntnsOf(process.pid));
    assert.ok(mine.every((m) => m.mntns_id === e.mntns_id));
  });

  test('the new mount API: fsopen, fsconfig, fsmount, move_mount, exact', async (t) => {
    const { bin, dir, token } = setup(t);
    let child!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { filter: 'comm==mount_loop' }), async () => {
      child = await run(bin, ['1', dir, token, 'tmpfs', 'new']);
    });
    assert.equal(child.code, 0);
    const mine = fromPid(events, child.pid).slice(1).map(shape); // after the rprivate mount of /
    const fds = mine.filter((e) => e.operation === 'fsopen' || e.operation === 'fsmount').map((e) => e.ret as number);
    assert.ok(fds.length === 2 && fds.every((fd) => fd >= 0), `fsopen and fsmount return fds: ${fds}`);
    const none = { fs: '', source: '', target: '', data: '', err_name: '' };
    assert.deepEqual(mine, [
      { ...none, operation: 'fsopen', fs: 'tmpfs', flags: 1, flag_names: 'FSOPEN_CLOEXEC', ret: fds[0] },
      { ...none, operation: 'fsconfig', source: token, flags: 1, flag_names: 'FSCONFIG_SET_STRING', data: `source=${token}`, ret: 0 },
      { ...none, operation: 'fsconfig', flags: 1, flag_names: 'FSCONFIG_SET_STRING', data: 'size=1m', ret: 0 },
      { ...none, operation: 'fsconfig', flags: 6, flag_names: 'FSCONFIG_CMD_CREATE', ret: 0 },
      { ...none, operation: 'fsmount', flags: 6, flag_names: 'MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV', ret: fds[1] },
      { ...none, operation: 'move_mount', target: dir, flags: 4, flag_names: 'MOVE_MOUNT_F_EMPTY_PATH', ret: 0 },
      { ...none, operation: 'umount', target: dir, flags: MNT_DETACH, flag_names: 'MNT_DETACH', ret: 0 },
    ]);
  });

  test('failing mounts: an unknown filesystem type (ENODEV), a missing mount point (ENOENT)', async (t) => {
    const { bin, dir, token } = setup(t);
    const missing = path.join(dir, 'missing');
    let nofs!: Awaited<ReturnType<typeof run>>;
    let nodir!: Awaited<ReturnType<typeof run>>;
    let nofsNew!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { filter: 'comm==mount_loop,ret<0' }), async () => {
      nofs = await run(bin, ['1', dir, token, 'nosuchfs']);
      nodir = await run(bin, ['1', missing, token]);
      nofsNew = await run(bin, ['1', dir, token, 'nosuchfs', 'new']);
    });
    assert.deepEqual([nofs.code, nodir.code, nofsNew.code], [0, 1, 0], 'ENODEV is what the fixture expects; ENOENT fails it');
    const flags = MS_NOSUID | MS_NODEV;
    assert.deepEqual(fromPid(events, nofs.pid).map(shape), [
      { operation: 'mount', fs: 'nosuchfs', source: token, target: dir, flags, flag_names: 'MS_NOSUID|MS_NODEV', data: 'size=1m', ret: -ENODEV, err_name: 'ENODEV' },
    ]);
    assert.deepEqual(fromPid(events, nodir.pid).map(shape), [
      { operation: 'mount', fs: 'tmpfs', source: token, target: missing, flags, flag_names: 'MS_NOSUID|MS_NODEV', data: 'size=1m', ret: -ENOENT, err_name: 'ENOENT' },
    ]);
    assert.deepEqual(fromPid(events, nofsNew.pid).map(shape), [
      { operation: 'fsopen', fs: 'nosuchfs', source: '', target: '', flags: 1, flag_names: 'FSOPEN_CLOEXEC', data: '', ret: -ENODEV, err_name: 'ENODEV' },
    ]);
  });

  test('util-linux mount and umount in a private namespace (unshare -m)', async (t) => {
    const { dir, token } = setup(t);
    let sh!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { filter: `source==${token}` }), async () => {
      sh = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m "$1" "$2" && umount "$2"', 'sh', token, dir]);
    });
    assert.equal(sh.code, 0);
    assert.deepEqual(events.map((e) => [e.comm, e.operation, e.fs, e.source, e.target, e.data, e.ret]), [['mount', 'mount', 'tmpfs', token, dir, 'size=1m', 0]]);
  });

  test('filters: matching ones see the mount, non-matching kernel and user filters see nothing', async (t) => {
    const { bin, dir, token } = setup(t);
    const me = 'comm==mount_loop';
    // every session detaches 12 tracepoint links at ~0.1 s each (docs/architecture.md): a few filters per side
    const filters = [
      `${me},operation==mount,fs==tmpfs`, `${me},source==${token},flags==${MS_NOSUID | MS_NODEV}`, `${me},flag_names~MS_NODEV`,
      'comm==nomatch_xyz', 'pid==1', `${me},operation==fsopen`, `${me},fs==ext4`, `${me},err_name==EPERM`,
    ];
    const steps = filters.map((filter, i): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: `f${i}`, filter })]);
    const traced = await traceAllWhile(steps, async () => {
      assert.equal((await run(bin, ['1', dir, token])).code, 0);
    });
    const counts = Object.fromEntries(filters.map((f, i) => [f, traced[i].events.filter((e) => e.source === token).length]));
    assert.deepEqual(counts, Object.fromEntries(filters.map((f, i) => [f, i < 3 ? 1 : 0])));
  });

  test('a workload cgroup: mounts inside are seen, mounts outside are not', async (t) => {
    const { bin, dir } = setup(t);
    const [inToken, outToken] = [uniqueToken('inside'), uniqueToken('outside')];
    const cg = freshCgroup(t, uniqueToken('cg'));
    let inside!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      inside = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" 1 "$3" "$4"', 'sh', cg.dir, bin, dir, inToken]);
      assert.equal((await run(bin, ['1', dir, outToken])).code, 0);
    });
    assert.equal(inside.code, 0);
    const seen = events.filter((e) => e.source === inToken);
    assert.deepEqual(seen.map((e) => [e.pid, e.operation, e.cgroup_id]), [[inside.pid, 'mount', Number(cg.id)]]);
    assert.deepEqual(events.filter((e) => e.source === outToken), []);
  });
});
