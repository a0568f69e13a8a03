import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { buildFixture } from '../helpers/fixtures.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { memoryCgroup, oomKillLine, type MemoryCgroup } from '../helpers/memcg.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run, stopChild } from '../helpers/proc.ts';
import { stepContext, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/oomkill'];
const MiB = 1 << 20;

/** Run `oom_alloc MIB COUNT` after moving the shell into `cgroups` (in order); the pids of its children, killed or not. */
async function ooms(fixture: string, cgroups: string[], mib: number, count: number): Promise<{ killed: number[]; exited: number[] }> {
  const joins = cgroups.map((_, i) => `echo $$ > "$${i + 3}/cgroup.procs"`).join(' && ');
  const r = await run('/bin/sh', ['-c', `${joins} && exec "$1" "$2" ${count}`, 'sh', fixture, String(mib), ...cgroups]);
  const lines = r.stdout.trim().split('\n').map((l) => l.split(' '));
  const of = (how: string) => lines.filter(([, h]) => h === how).map(([pid]) => Number(pid));
  return { killed: of('killed'), exited: of('exited') };
}

function victims(events: Event[], pids: number[]): Event[] {
  return events.filter((e) => pids.includes(e.tpid as number));
}

/** The memory cgroup the OOMs happen in, limited to 16 MiB. */
function memcg(t: TestContext): MemoryCgroup {
  return memoryCgroup(t, uniqueToken('memcg'), 16 * MiB);
}

describe('trace/oomkill', { skip: kernelSkip(def), timeout: 60_000 }, () => {
  test('a child allocating past its memory cgroup: the exact victim, its memory, the killer is itself', async (t) => {
    const fixture = buildFixture(t, 'oom_alloc');
    const mem = memcg(t);
    let pids!: Awaited<ReturnType<typeof ooms>>;
    const { events } = await traceWhile(def, stepContext(t), async () => {
      pids = await ooms(fixture, [mem.dir], 64, 1);
    });
    assert.equal(pids.killed.length, 1, `the child was OOM-killed: ${JSON.stringify(pids)}`);
    const [pid] = pids.killed;
    const mine = victims(events, [pid]);
    assert.equal(mine.length, 1, JSON.stringify(events));
    const e = mine[0];
    assert.match(e.timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    // the child inherited this process's mount namespace, and its cgroup v2 unless it joined one: where
    // the memory controller is on cgroup v2 (the qemu guests), the memory cgroup is its cgroup v2 too;
    // on a hybrid system (this host: memory on v1) it stays in this process's
    const cgroupV2 = mem.v2?.id ?? cgroupIdOf(cgroupDirOf(process.pid));
    assert.deepEqual(
      [e.kpid, e.kcomm, e.tpid, e.ttid, e.tcomm, e.uid, e.oom_score_adj, e.mntns_id, e.cgroup_id],
      [pid, 'oom_child', pid, pid, 'oom_child', 0, 0, mntnsOf(process.pid), Number(cgroupV2)],
    );
    // the memory fields exactly as the kernel's own OOM report has them for this victim: the
    // same counters, read in the same task just after mark_victim (a binary on a tmpfs /tmp
    // is shmem on 6.1 and not on 6.12: no fixed number is right everywhere)
    const kernel = oomKillLine(pid);
    assert.ok(kernel, `the kernel's "Killed process ${pid}" line is in /dev/kmsg`);
    assert.deepEqual(
      { anon_rss: e.anon_rss, file_rss: e.file_rss, shmem_rss: e.shmem_rss, total_vm: e.total_vm },
      { anon_rss: kernel.anon_rss, file_rss: kernel.file_rss, shmem_rss: kernel.shmem_rss, total_vm: kernel.total_vm },
    );
    assert.deepEqual([kernel.comm, kernel.uid, kernel.oom_score_adj], ['oom_child', 0, 0]);
    const [anon, file, vm] = [e.anon_rss, e.file_rss, e.total_vm] as number[];
    assert.ok(anon > 0 && anon <= 16 * 1024, `anon_rss ${anon} kB is charged to the 16 MiB cgroup`);
    assert.ok(file > 0, `file_rss ${file} kB: the program and libc are mapped`);
    assert.ok(vm > 64 * 1024, `total_vm ${vm} kB covers the 64 MiB allocation`);
  });

  test('another victim: the OOM killer runs in the allocating task and kills the one with oom_score_adj 1000', async (t) => {
    const fixture = buildFixture(t, 'oom_alloc');
    const mem = memcg(t);
    const holder = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && echo 1000 > /proc/self/oom_score_adj && exec "$2" 6 hold', 'sh', mem.dir, fixture], { stdio: ['ignore', 'pipe', 'ignore'] });
    t.after(() => stopChild(holder));
    const closed = once(holder, 'close'); // before the kill, which may close it while ooms() still runs
    const [ready] = (await once(holder.stdout!, 'data')) as [Buffer];
    assert.equal(ready.toString(), 'ready\n');
    let pids!: Awaited<ReturnType<typeof ooms>>;
    const { events } = await traceWhile(def, stepContext(t), async () => {
      pids = await ooms(fixture, [mem.dir], 12, 1);
      await closed;
    });
    assert.equal(holder.signalCode, 'SIGKILL', 'the holder was the victim');
    // the allocator usually survives; on a loaded machine the memory the holder frees can come
    // too late and the allocator is killed next, which is the kernel's call, not the gadget's
    const allocator = [...pids.exited, ...pids.killed];
    assert.equal(allocator.length, 1, 'one allocating child');
    const mine = victims(events, [holder.pid!]);
    assert.equal(mine.length, 1, JSON.stringify(events));
    assert.deepEqual(
      [mine[0].tcomm, mine[0].oom_score_adj, mine[0].kpid, mine[0].kcomm],
      ['oom_alloc', 1000, allocator[0], 'oom_child'],
    );
    assert.ok((mine[0].anon_rss as number) >= 6 * 1024, 'the holder holds its 6 MiB');
  });

  test('filters on the victim: matching ones see the kill, non-matching kernel and user filters see nothing', async (t) => {
    const fixture = buildFixture(t, 'oom_alloc');
    const mem = memcg(t);
    // tpid, ttid, tcomm, uid and mntns_id are kernel filters on the victim; kcomm stays in user space
    const filters = [
      'uid==0', 'tcomm==oom_child', 'kcomm==oom_child',
      'uid==65534', `mntns_id==${mntnsOf(process.pid) + 1}`, 'tcomm==nomatch_xyz', 'tpid==1', `ttid==${process.pid}`, 'kcomm==nomatch_xyz',
    ];
    const steps = filters.map((filter, i): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: `f${i}`, filter })]);
    let pids!: Awaited<ReturnType<typeof ooms>>;
    const traced = await traceAllWhile(steps, async () => {
      pids = await ooms(fixture, [mem.dir], 64, 1);
    });
    assert.equal(pids.killed.length, 1);
    const counts = Object.fromEntries(filters.map((f, i) => [f, victims(traced[i].events, pids.killed).length]));
    assert.deepEqual(counts, Object.fromEntries(filters.map((f, i) => [f, i < 3 ? 1 : 0])));
  });

  test('a workload cgroup: a victim inside is seen, a victim outside is not', async (t) => {
    const fixture = buildFixture(t, 'oom_alloc');
    const memIn = memcg(t);
    const memOut = memcg(t);
    // on cgroup v2 the memory cgroup is the workload cgroup; on v1 the victim joins a v2 cgroup as well
    const workload = memIn.v2 ?? freshCgroup(t, uniqueToken('cg'));
    const inside = 'dir' in workload ? [workload.dir as string, memIn.dir] : [memIn.dir];
    let pidsIn!: Awaited<ReturnType<typeof ooms>>;
    let pidsOut!: Awaited<ReturnType<typeof ooms>>;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: workload.id, level: workload.level } }), async () => {
      pidsIn = await ooms(fixture, inside, 64, 1);
      pidsOut = await ooms(fixture, [memOut.dir], 64, 1);
    });
    assert.deepEqual([pidsIn.killed.length, pidsOut.killed.length], [1, 1], 'both were OOM-killed');
    const seen = victims(events, pidsIn.killed);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].cgroup_id, Number(workload.id));
    assert.deepEqual(victims(events, pidsOut.killed), []);
  });

  test('the fixture counts: oom_alloc 64 3 is three OOM kills, three events', async (t) => {
    const fixture = buildFixture(t, 'oom_alloc');
    const mem = memcg(t);
    let pids!: Awaited<ReturnType<typeof ooms>>;
    const { events } = await traceWhile(def, stepContext(t), async () => {
      pids = await ooms(fixture, [mem.dir], 64, 3);
    });
    assert.equal(pids.killed.length, 3);
    assert.deepEqual(victims(events, pids.killed).map((e) => e.tpid), pids.killed);
  });
});
