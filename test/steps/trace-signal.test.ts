import assert from 'node:assert/strict';
import fs from 'node:fs';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { background, cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/signal'];
const [SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGTERM, SIGCHLD] = [9, 10, 11, 12, 15, 17];
const SI_USER = 0;
const SEGV_MAPERR = 1;
const CLD_KILLED = 2;
const ESRCH = 3;

const me = `pid==${process.pid}`;
const myComm = fs.readFileSync('/proc/self/comm', 'utf8').trim();

/** What every event this process sends says about the sender. */
function fromMe(): Event {
  return {
    pid: process.pid, tid: process.pid, comm: myComm, uid: 0, gid: 0,
    mntns_id: mntnsOf(process.pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(process.pid))),
  };
}

function withoutTimestamp(events: Event[]): Event[] {
  return events.map(({ timestamp, ...rest }) => {
    assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    return rest;
  });
}

/** A pid no process has now (the kernel hands out pids upwards; this one is far above the current ones). */
function missingPid(): number {
  const max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let pid = max - 1; pid > 1; pid--) if (!fs.existsSync(`/proc/${pid}`)) return pid;
  throw new Error('no free pid');
}

/** Signal a child and wait until it died of it. */
async function killChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const closed = once(child, 'close');
  process.kill(child.pid!, signal);
  const [, sig] = await closed;
  assert.equal(sig, signal);
}

function sendFailing(pid: number, signal: NodeJS.Signals): void {
  assert.throws(() => process.kill(pid, signal), { code: 'ESRCH' });
}

function to(events: Event[], pids: number[]): Event[] {
  return events.filter((e) => pids.includes(e.tpid as number));
}

describe('trace/signal', { skip: kernelSkip(def) }, () => {
  test('SIGUSR1 and SIGKILL to children: sender, target, number, name, delivered', async (t) => {
    const a = await background(t, 'sleep', ['30']);
    const b = await background(t, 'sleep', ['30']);
    const { outcome, events } = await traceWhile(def, stepContext(t, { filter: me }), async () => {
      await killChild(a, 'SIGUSR1');
      await killChild(b, 'SIGKILL');
    });
    assert.equal(outcome.events, events.length);
    const target = (child: ChildProcess) => ({ tpid: child.pid, ttid: child.pid, tcomm: 'sleep' });
    const sent = { code: SI_USER, result: 'delivered', ret: 0, err_name: '' };
    assert.deepEqual(withoutTimestamp(to(events, [a.pid!, b.pid!])), [
      { ...fromMe(), ...target(a), ...sent, signal: SIGUSR1, signal_name: 'SIGUSR1' },
      { ...fromMe(), ...target(b), ...sent, signal: SIGKILL, signal_name: 'SIGKILL' },
    ].map((e) => Object.fromEntries(def.fields.filter((f) => f.name !== 'timestamp').map((f) => [f.name, e[f.name as keyof typeof e]]))));
  });

  test('a kill that fails: result failed, ret -ESRCH, err_name ESRCH', async (t) => {
    const missing = missingPid();
    const { events } = await traceWhile(def, stepContext(t, { filter: me }), () => sendFailing(missing, 'SIGTERM'));
    const mine = withoutTimestamp(to(events, [missing]));
    assert.equal(mine.length, 1, JSON.stringify(mine));
    assert.deepEqual(mine[0], {
      ...fromMe(), tpid: missing, ttid: 0, tcomm: '', signal: SIGTERM, signal_name: 'SIGTERM',
      code: SI_USER, result: 'failed', ret: -ESRCH, err_name: 'ESRCH',
    });
  });

  test('SIGSEGV from a NULL dereference: the faulting task is sender and target; its SIGCHLD comes from it', async (t) => {
    const segv = compileFixture(t, 'segv');
    let r!: Awaited<ReturnType<typeof run>>;
    // no core dump, so the parent's SIGCHLD says CLD_KILLED
    const { events } = await traceWhile(def, stepContext(t, { filter: 'comm==segv' }), async () => {
      r = await run('/bin/sh', ['-c', 'ulimit -c 0 && exec "$0" 1', segv]);
    });
    assert.equal(r.code, 0, 'the child died of SIGSEGV');
    // comm==segv is node-wide: another test's segv fixture may fault meanwhile, so keep this run's child (its SIGCHLD to r.pid names it)
    const mine = events.filter((e) => e.signal === SIGCHLD && e.tpid === r.pid).map((e) => e.pid);
    const faults = events.filter((e) => e.signal === SIGSEGV && mine.includes(e.pid));
    assert.equal(faults.length, 1, JSON.stringify(events));
    const child = faults[0].pid as number;
    assert.notEqual(child, r.pid, 'the fault is the forked child\'s');
    const ids = { uid: 0, gid: 0, mntns_id: mntnsOf(process.pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(process.pid))) };
    const byChild = { pid: child, tid: child, comm: 'segv', ...ids, ret: 0, err_name: '', result: 'delivered' };
    assert.deepEqual(withoutTimestamp(faults), [
      { ...byChild, tpid: child, ttid: child, tcomm: 'segv', signal: SIGSEGV, signal_name: 'SIGSEGV', code: SEGV_MAPERR },
    ].map(ordered));
    assert.deepEqual(withoutTimestamp(events.filter((e) => e.signal === SIGCHLD && e.pid === child)), [
      // by then the exiting child has left its namespaces (exit_task_namespaces precedes
      // exit_notify), and SIGCHLD at its default disposition is ignored: waitpid still reaps
      { ...byChild, mntns_id: 0, tpid: r.pid, ttid: r.pid, tcomm: 'segv', signal: SIGCHLD, signal_name: 'SIGCHLD', code: CLD_KILLED, result: 'ignored' },
    ].map(ordered));
  });

  test('params signal, failed_only and pid each narrow to their signals', async (t) => {
    const a = await background(t, 'sleep', ['30']);
    const b = await background(t, 'sleep', ['30']);
    const missing = missingPid();
    const cases: [string, Record<string, unknown>, number[]][] = [
      ['all', {}, [SIGUSR1, SIGUSR2, SIGTERM]],
      ['signal by name', { signal: 'SIGUSR2' }, [SIGUSR2]],
      ['signal by number', { signal: SIGUSR1 }, [SIGUSR1]],
      ['failed_only', { failed_only: true }, [SIGTERM]],
      ['pid of a', { pid: a.pid }, [SIGUSR1]],
      ['pid of the missing one', { pid: missing }, [SIGTERM]],
      ['failed_only to a', { failed_only: true, pid: a.pid }, []],
    ];
    // filters by name, in user space, for comparison with the params
    const filters: [string, string, number[]][] = [
      ['filter signal==SIGUSR2', `${me},signal==SIGUSR2`, [SIGUSR2]],
      ['filter signal_name==SIGUSR1', `${me},signal_name==SIGUSR1`, [SIGUSR1]],
      ['filter result==failed,err_name==ESRCH', `${me},result==failed,err_name==ESRCH`, [SIGTERM]],
    ];
    const traced = await traceAllWhile(
      [
        ...cases.map(([id, params]): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: id.replace(/\W/g, '_'), filter: me, params })]),
        ...filters.map(([id, filter]): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: id.replace(/\W/g, '_'), filter })]),
      ],
      async () => {
        await killChild(a, 'SIGUSR1');
        await killChild(b, 'SIGUSR2');
        sendFailing(missing, 'SIGTERM');
      },
    );
    const all = [...cases, ...filters];
    const seen = Object.fromEntries(all.map(([id], i) => [id, to(traced[i].events, [a.pid!, b.pid!, missing]).map((e) => e.signal)]));
    assert.deepEqual(seen, Object.fromEntries(all.map(([id, , want]) => [id, want])));
  });

  test('non-matching filters and params see nothing of the signal', async (t) => {
    const a = await background(t, 'sleep', ['30']);
    const filters: [string, string, Record<string, unknown>][] = [
      ['control', me, {}],
      ['comm', 'comm==nomatch_xyz', {}],
      ['pid', 'pid==1', {}],
      ['uid', 'uid==65534', {}],
      ['tpid', `${me},tpid==1`, {}],
      ['name', `${me},signal_name==SIGHUP`, {}],
      ['number by name', `${me},signal==SIGHUP`, {}],
      ['result', `${me},result==failed`, {}],
      ['param signal', me, { signal: 'SIGHUP' }],
      ['param pid', me, { pid: 1 }],
    ];
    const traced = await traceAllWhile(
      filters.map(([id, filter, params]): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: id.replace(/\W/g, '_'), filter, params })]),
      () => killChild(a, 'SIGUSR1'),
    );
    const counts = Object.fromEntries(filters.map(([id], i) => [id, to(traced[i].events, [a.pid!]).length]));
    assert.deepEqual(counts, Object.fromEntries(filters.map(([id], i) => [id, i === 0 ? 1 : 0])));
  });

  test('a workload cgroup: signals sent from inside are seen, from outside are not', async (t) => {
    const inside = await background(t, 'sleep', ['30']);
    const outside = await background(t, 'sleep', ['30']);
    const cg = freshCgroup(t, uniqueToken('cg'));
    let sh!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      const died = once(inside, 'close');
      sh = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && kill -USR1 "$2"', 'sh', cg.dir, String(inside.pid)]);
      assert.equal(sh.code, 0);
      await died;
      await killChild(outside, 'SIGUSR1');
    });
    const seen = to(events, [inside.pid!]);
    assert.equal(seen.length, 1, JSON.stringify(events));
    assert.deepEqual([seen[0].pid, seen[0].comm, seen[0].signal, seen[0].cgroup_id], [sh.pid, 'sh', SIGUSR1, Number(cg.id)]);
    assert.deepEqual(to(events, [outside.pid!]), []);
  });
});

/** An expected event with its keys in the definition's field order, as the spool writes them. */
function ordered(e: Event): Event {
  return Object.fromEntries(def.fields.filter((f) => f.name !== 'timestamp').map((f) => [f.name, e[f.name]]));
}
