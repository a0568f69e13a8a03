import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import { SYSCALLS_X86_64 } from '../../src/steps/names/syscalls-x86_64.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { buildFixture } from '../helpers/fixtures.ts';
import { eachVariant, kernelSkip } from '../helpers/kernel.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, tempDir, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/capabilities'];
const CAP_CHOWN = 0;
const NOBODY = 65534;
const EPERM = 1;
// chown checks CAP_CHOWN against the caller's own user namespace (ours: the children inherit it)
const OWN_USERNS = Number(fs.statSync('/proc/self/ns/user').ino);
const sysNumber = (name: string) => Number(Object.entries(SYSCALLS_X86_64).find(([, n]) => n === name)![0]);
/** chown_loop calls chown(2); the syscall fields are checked where the name table is this machine's */
const X64 = process.arch === 'x64';

/** A root-owned file in a directory any uid may enter, and the fixture that chowns it. */
function setup(t: TestContext): { bin: string; file: string } {
  const bin = buildFixture(t, 'chown_loop');
  const dir = tempDir(t);
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, uniqueToken());
  fs.writeFileSync(file, '');
  return { bin, file };
}

function of(events: Event[], pid: number, cap = CAP_CHOWN): Event[] {
  return events.filter((e) => e.pid === pid && e.cap === cap);
}

describe('trace/capabilities', { skip: kernelSkip(def) }, () => {
  test('chown as root: one allowed CAP_CHOWN check per call, in chown(2), with every field exact', async (t) => {
    const { bin, file } = setup(t);
    let child!: Awaited<ReturnType<typeof run>>;
    const { outcome, events } = await traceWhile(def, stepContext(t, { filter: 'comm==chown_loop' }), async () => {
      child = await run(bin, ['4', file]);
    });
    assert.deepEqual([child.code, child.stdout], [0, '0 denied\n']);
    assert.equal(outcome.events, events.length);
    const mine = of(events, child.pid);
    assert.equal(mine.length, 4, JSON.stringify(mine));
    for (const { timestamp, ...rest } of mine) {
      assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.deepEqual({ ...rest, syscall_nr: X64 ? rest.syscall_nr : 'skipped', syscall: X64 ? rest.syscall : 'skipped' }, {
        pid: child.pid, tid: child.pid, uid: 0, gid: 0, comm: 'chown_loop',
        cap: CAP_CHOWN, cap_name: 'CAP_CHOWN', ret: 0, verdict: 'allowed',
        syscall_nr: X64 ? sysNumber('chown') : 'skipped', syscall: X64 ? 'chown' : 'skipped',
        target_userns: OWN_USERNS, mntns_id: mntnsOf(process.pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(process.pid))),
      });
    }
  });

  test('as uid 65534: chown is denied CAP_CHOWN (-EPERM) and sethostname CAP_SYS_ADMIN', { skip: !X64 && 'syscall names are x86-64 here' }, async (t) => {
    const { bin, file } = setup(t);
    let child!: Awaited<ReturnType<typeof run>>;
    let hostname: Awaited<ReturnType<typeof run>> | undefined;
    const hostnameBin = ['/usr/bin/hostname', '/bin/hostname'].find((p) => fs.existsSync(p));
    const { events } = await traceWhile(def, stepContext(t, { filter: `uid==${NOBODY}` }), async () => {
      child = await run(bin, ['3', file], { uid: NOBODY, gid: NOBODY });
      // setting the name it already has: refused all the same without CAP_SYS_ADMIN
      if (hostnameBin) hostname = await run(hostnameBin, [fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()], { uid: NOBODY, gid: NOBODY });
    });
    assert.deepEqual([child.code, child.stdout], [0, '3 denied\n']);
    const denied = of(events, child.pid);
    assert.equal(denied.length, 3, JSON.stringify(denied));
    for (const e of denied) {
      assert.deepEqual([e.uid, e.gid, e.cap_name, e.ret, e.verdict, e.syscall, e.target_userns], [NOBODY, NOBODY, 'CAP_CHOWN', -EPERM, 'denied', 'chown', OWN_USERNS]);
    }
    if (hostname) {
      assert.notEqual(hostname.code, 0, 'hostname failed as uid 65534');
      const sethostname = events.filter((e) => e.pid === hostname!.pid && e.syscall === 'sethostname');
      assert.deepEqual(sethostname.map((e) => [e.cap_name, e.ret, e.verdict]), [['CAP_SYS_ADMIN', -EPERM, 'denied']]);
    }
  });

  test('unique: each (process, capability) once, decided in the kernel', async (t) => {
    const { bin, file } = setup(t);
    let child!: Awaited<ReturnType<typeof run>>;
    const [unique, all] = await traceAllWhile([
      [def, stepContext(t, { id: 'unique', filter: 'comm==chown_loop', params: { unique: true } })],
      [def, stepContext(t, { id: 'all', filter: 'comm==chown_loop' })],
    ], async () => {
      child = await run(bin, ['5', file]);
    });
    assert.equal(of(all.events, child.pid).length, 5);
    assert.equal(of(unique.events, child.pid).length, 1);
    const keys = unique.events.map((e) => `${e.pid}/${e.cap}`);
    assert.equal(new Set(keys).size, keys.length, `no (pid, cap) twice: ${keys.join(' ')}`);
    assert.equal(unique.outcome.events, unique.events.length);
  });

  test('caps and filters: matching ones see the chowns, non-matching ones (kernel and user space) see nothing', async (t) => {
    const { bin, file } = setup(t);
    const me = 'comm==chown_loop';
    const cases: [string, Record<string, unknown>, boolean][] = [
      [me, {}, true],
      [me, { caps: ['CAP_CHOWN'] }, true],
      [me, { caps: [CAP_CHOWN, 'CAP_NET_ADMIN'] }, true],
      [`${me},cap==CAP_CHOWN`, {}, true],
      [`${me},cap_name==CAP_CHOWN,verdict==allowed`, {}, true],
      [me, { caps: ['CAP_NET_ADMIN', 21] }, false],
      [`${me},cap==CAP_NET_ADMIN`, {}, false],
      [`${me},verdict==denied`, {}, false],
      ['comm==nomatch_xyz', {}, false],
      [`uid==${NOBODY}`, {}, false],
    ];
    const steps = cases.map(([filter, params], i): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: `f${i}`, filter, params })]);
    let child!: Awaited<ReturnType<typeof run>>;
    const traced = await traceAllWhile(steps, async () => {
      child = await run(bin, ['2', file]);
    });
    const counts = Object.fromEntries(cases.map(([f, p], i) => [`${f} ${JSON.stringify(p)}`, of(traced[i].events, child.pid).length]));
    assert.deepEqual(counts, Object.fromEntries(cases.map(([f, p, sees]) => [`${f} ${JSON.stringify(p)}`, sees ? 2 : 0])));
    // caps is checked in the kernel: nothing but CAP_CHOWN reaches the ring
    assert.ok(traced[1].events.every((e) => e.cap === CAP_CHOWN), 'caps: [CAP_CHOWN] lets only CAP_CHOWN through');
  });

  test('a workload cgroup: checks inside are seen, checks outside are not', async (t) => {
    const { bin, file } = setup(t);
    const cg = freshCgroup(t, uniqueToken('cg'));
    let inside!: Awaited<ReturnType<typeof run>>;
    let outside!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      inside = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" 2 "$3"', 'sh', cg.dir, bin, file]);
      outside = await run(bin, ['2', file]);
    });
    assert.deepEqual([inside.code, outside.code], [0, 0]);
    const seen = of(events, inside.pid);
    assert.equal(seen.length, 2);
    assert.ok(seen.every((e) => e.cgroup_id === Number(cg.id)));
    assert.deepEqual(events.filter((e) => e.pid === outside.pid), []);
  });

  test('every hook variant this kernel runs: the same checks with the same fields, side by side', async (t) => {
    const { here, notHere } = await eachVariant(def);
    for (const why of notHere) t.diagnostic(`not on this kernel: ${why}`);
    assert.ok(here.length >= 1, 'the gadget is supported here, so one variant at least runs');
    const { bin, file } = setup(t);
    let child!: Awaited<ReturnType<typeof run>>;
    const traced = await traceAllWhile(here.map(([name, d]) => [d, stepContext(t, { id: name.replace(/\W+/g, '_'), filter: 'comm==chown_loop' })]), async () => {
      child = await run(bin, ['3', file]);
    });
    const rows = traced.map(({ events }) => of(events, child.pid).map(({ timestamp, ...rest }) => rest));
    assert.equal(rows[0].length, 3, `${here[0][0]}: ${JSON.stringify(rows[0])}`);
    here.forEach(([name], i) => assert.deepEqual(rows[i], rows[0], `${name} and ${here[0][0]} disagree`));
  });
});
