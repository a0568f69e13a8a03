import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { background, cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, procStatus, stopChild } from '../helpers/proc.ts';
import { snapshot, stepContext, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['snapshot/process'];

function ofPid(events: Event[], pid: number): Event[] {
  return events.filter((e) => e.pid === pid);
}

function tids(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
}

describe('snapshot/process', { skip: kernelSkip(def) }, () => {
  test('a sleeping child: ids, names, namespaces and cgroup as /proc has them', async (t) => {
    const child = await background(t, 'sleep', ['30'], { uid: 65534, gid: 65534 });
    const pid = child.pid!;
    const { outcome, events } = await snapshot(def, stepContext(t));
    assert.equal(outcome.events, events.length);
    assert.deepEqual(outcome.warnings, []);
    const mine = ofPid(events, pid);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    assert.deepEqual(mine[0], {
      pid, ppid: process.pid, tid: pid, comm: 'sleep',
      uid: Number(procStatus(pid, 'Uid')[0]), gid: Number(procStatus(pid, 'Gid')[0]),
      mntns_id: mntnsOf(pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(pid))),
    });
    assert.deepEqual([mine[0].uid, mine[0].gid], [65534, 65534], 'the ids the child was started with');
    // the tracer leaves itself out in the kernel (targ_exclude_tgid), unless a pid filter names it (below)
    assert.equal(ofPid(events, process.pid).length, 0, 'not this process: it is the tracer');
  });

  test('filters: kernel and user-space predicates pick the child, others exclude it', async (t) => {
    const child = await background(t, 'sleep', ['30'], { uid: 65534, gid: 65534 });
    const pid = child.pid!;
    const cases: [string, number][] = [
      [`pid==${pid}`, 1], ['uid==65534,comm==sleep', 1], [`ppid==${process.pid},comm~^sle`, 1],
      [`pid==${process.pid}`, 0], ['uid==0', 0], ['comm==nomatch_xyz', 0], [`ppid!=${process.pid}`, 0],
    ];
    for (const [filter, expected] of cases) {
      const { events } = await snapshot(def, stepContext(t, { filter }));
      assert.equal(ofPid(events, pid).length, expected, `${filter} sees the child ${expected} time(s)`);
      if (filter.startsWith('pid==')) assert.ok(events.every((e) => e.pid === Number(filter.slice(5))), `${filter}: only that pid`);
    }
  });

  test('threads: true lists every thread of this process; the default one entry per process', async (t) => {
    const filter = `pid==${process.pid}`;
    const before = tids(process.pid);
    assert.ok(before.length > 1, 'node runs several threads');
    const threads = await snapshot(def, stepContext(t, { id: 'threads', filter, params: { threads: true } }));
    const after = tids(process.pid);
    const seen = threads.events.map((e) => e.tid as number);
    assert.equal(new Set(seen).size, seen.length, 'each thread once');
    assert.ok(threads.events.every((e) => e.pid === process.pid), 'threads of this process only');
    for (const tid of before) assert.ok(seen.includes(tid), `thread ${tid} (alive before the snapshot) is listed`);
    for (const tid of seen) assert.ok(after.includes(tid), `thread ${tid} is a thread of this process`);

    const processes = await snapshot(def, stepContext(t, { id: 'processes', filter }));
    assert.deepEqual(processes.events.map((e) => [e.pid, e.tid]), [[process.pid, process.pid]]);
  });

  test('a workload cgroup: the process inside is listed, one outside is not', async (t) => {
    const cg = freshCgroup(t, uniqueToken('cg'));
    const outside = await background(t, 'sleep', ['30']);
    // the shell moves itself into the cgroup, says so, then becomes sleep
    const inside = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && echo in && exec sleep 30', 'sh', cg.dir], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const [line] = (await once(inside.stdout!, 'data')) as [Buffer];
      assert.equal(line.toString(), 'in\n');
      const ctx: StepContext = stepContext(t, { cgroup: { id: cg.id, level: cg.level } });
      const { events } = await snapshot(def, ctx);
      const mine = ofPid(events, inside.pid!);
      assert.equal(mine.length, 1, 'the process in the cgroup is listed');
      assert.equal(mine[0].cgroup_id, Number(cg.id));
      assert.deepEqual(ofPid(events, outside.pid!), [], 'the process outside is not');
      assert.ok(events.every((e) => e.cgroup_id === Number(cg.id)), 'nothing from other cgroups');
    } finally {
      await stopChild(inside);
      await stopChild(outside);
    }
  });
});
