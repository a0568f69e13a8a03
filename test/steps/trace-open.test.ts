import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, tempDir, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/open'];
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC } = fs.constants;
const O_CLOEXEC = 0o2000000; // libuv adds it to every open; not in fs.constants
const ENOENT = 2;

function at(events: Event[], file: string): Event[] {
  return events.filter((e) => e.path === file);
}

describe('trace/open', { skip: kernelSkip(def) }, () => {
  test('an open by this process: path, flags, mode, fd, ids', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    let fd = -1;
    const { outcome, events } = await traceWhile(def, stepContext(t, { filter: `pid==${process.pid}` }), () => {
      fd = fs.openSync(file, 'wx', 0o640);
      fs.closeSync(fd);
    });
    assert.equal(outcome.events, events.length);
    const mine = at(events, file);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    const { timestamp, ...rest } = mine[0];
    assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.deepEqual(rest, {
      pid: process.pid, tid: process.pid, uid: 0, gid: 0, comm: fs.readFileSync('/proc/self/comm', 'utf8').trim(),
      path: file, flags: O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, flag_names: 'O_WRONLY|O_CREAT|O_EXCL|O_TRUNC|O_CLOEXEC',
      mode: 0o640, ret: fd, fd, err: 0, err_name: '',
      mntns_id: mntnsOf(process.pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(process.pid))),
    });
  });

  test('cat opening a file, filtered on its comm in the kernel', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    fs.writeFileSync(file, 'hello\n');
    let cat!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { filter: 'comm==cat' }), async () => {
      cat = await run('cat', [file]);
    });
    assert.equal(cat.stdout, 'hello\n');
    assert.ok(events.every((e) => e.comm === 'cat'), 'only cat');
    const mine = at(events, file);
    assert.equal(mine.length, 1);
    assert.equal(mine[0].pid, cat.pid);
    assert.equal(mine[0].flags, O_RDONLY);
    assert.ok((mine[0].fd as number) >= 0 && mine[0].fd === mine[0].ret);
    assert.equal(mine[0].err, 0);
  });

  test('a missing file: err ENOENT, fd -1', async (t) => {
    const file = path.join(tempDir(t), uniqueToken('missing'));
    const { events } = await traceWhile(def, stepContext(t, { filter: `pid==${process.pid}` }), () => {
      assert.throws(() => fs.openSync(file, 'r'), { code: 'ENOENT' });
    });
    const mine = at(events, file);
    assert.equal(mine.length, 1);
    assert.deepEqual([mine[0].ret, mine[0].fd, mine[0].err, mine[0].err_name, mine[0].flags], [-ENOENT, -1, ENOENT, 'ENOENT', O_RDONLY | O_CLOEXEC]);
  });

  test('filters: matching ones see the open, non-matching kernel and user filters see nothing', async (t) => {
    const file = path.join(tempDir(t), uniqueToken());
    fs.writeFileSync(file, 'x');
    // user-space filters ride on a kernel pid filter: unfiltered, a busy machine could fill their rings
    const me = `pid==${process.pid}`;
    const filters = [
      me, `${me},path~${path.basename(file)}$`, `${me},err==0`, `${me},flag_names~O_RDONLY`,
      'comm==nomatch_xyz', 'pid==1', `tid==${process.pid + 1}`, 'uid==65534', `${me},path~nomatch_xyz`, `${me},err!=0`, `${me},err==ENOENT`,
    ];
    const steps = filters.map((filter, i): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: `f${i}`, filter })]);
    const traced = await traceAllWhile(steps, () => fs.closeSync(fs.openSync(file, 'r')));
    const counts = Object.fromEntries(filters.map((f, i) => [f, at(traced[i].events, file).length]));
    assert.deepEqual(counts, Object.fromEntries(filters.map((f, i) => [f, i < 4 ? 1 : 0])));
  });

  test('pid==0 sees nothing of this process', async (t) => {
    // no event has pid 0; the kernel reads targ_tgid 0 as "no filter"
    const file = path.join(tempDir(t), uniqueToken());
    fs.writeFileSync(file, 'x');
    const [zero, control] = await traceAllWhile(
      [[def, stepContext(t, { id: 'zero', filter: 'pid==0' })], [def, stepContext(t, { id: 'control', filter: `pid==${process.pid}` })]],
      () => fs.closeSync(fs.openSync(file, 'r')),
    );
    assert.equal(at(control.events, file).length, 1, 'the open happened');
    assert.deepEqual(at(zero.events, file), []);
  });

  test('a workload cgroup: opens inside are seen, opens outside are not', async (t) => {
    const dir = tempDir(t);
    const inside = path.join(dir, uniqueToken('inside'));
    const outside = path.join(dir, uniqueToken('outside'));
    fs.writeFileSync(inside, 'in\n');
    fs.writeFileSync(outside, 'out\n');
    const cg = freshCgroup(t, uniqueToken('cg'));
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec cat "$2"', 'sh', cg.dir, inside]);
      assert.equal(r.stdout, 'in\n');
      fs.closeSync(fs.openSync(outside, 'r'));
      await run('cat', [outside]);
    });
    const seen = at(events, inside);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].cgroup_id, Number(cg.id));
    assert.deepEqual(at(events, outside), []);
  });
});
