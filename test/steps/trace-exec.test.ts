import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { kernelSkip, REPO } from '../helpers/kernel.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, tempDir, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/exec'];
const ENOENT = 2;

/** The events whose argv carries `token` (at index 1 unless said otherwise). */
function withArg(events: Event[], token: string, index = 1): Event[] {
  return events.filter((e) => (e.args as string[])[index] === token);
}

/** Build a C fixture from test/fixtures into the test's temp dir. */
function buildFixture(t: TestContext, name: string, flags: string[] = []): string {
  const out = path.join(tempDir(t), name);
  execFileSync('clang', ['-O2', ...flags, path.join(REPO, 'test/fixtures', `${name}.c`), '-o', out], { stdio: 'pipe' });
  return out;
}

describe('trace/exec', { skip: kernelSkip(def) }, () => {
  test('a spawned /bin/echo: exact args, result, names and ids', async (t) => {
    const token = uniqueToken();
    const argv = ['/bin/echo', token, 'a b', '', 'ünï"\\'];
    const ctx = stepContext(t);
    let child!: Awaited<ReturnType<typeof run>>;
    const before = Date.now();
    const { outcome, events } = await traceWhile(def, ctx, async () => {
      child = await run(argv[0], argv.slice(1));
    });
    const after = Date.now();
    assert.equal(child.stdout, `${argv.slice(1).join(' ')}\n`, 'echo ran');
    assert.equal(outcome.events, events.length, 'the outcome counts the events spooled');
    const mine = withArg(events, token);
    assert.equal(mine.length, 1, `one exec with ${token}: ${JSON.stringify(mine)}`);
    const e = mine[0];
    const { timestamp, ...rest } = e;
    assert.deepEqual(rest, {
      pid: child.pid, tid: child.pid, ppid: process.pid, uid: 0, gid: 0,
      comm: 'echo', pcomm: fs.readFileSync('/proc/self/comm', 'utf8').trim(),
      ret: 0, args: argv, args_truncated: false,
      mntns_id: mntnsOf(process.pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(process.pid))),
    });
    // the boot-time stamp converts to this wall-clock interval (1 s of slack for the clocks)
    assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const wall = Date.parse(timestamp as string);
    assert.ok(wall >= before - 1000 && wall <= after + 1000, `${timestamp} is not between ${new Date(before).toISOString()} and ${new Date(after).toISOString()}`);
  });

  test('a failing exec shows ret -ENOENT', async (t) => {
    const missing = `/nonexistent-${uniqueToken()}`;
    let sh!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t), async () => {
      sh = await run('/bin/sh', ['-c', `exec ${missing}`]);
    });
    assert.equal(sh.code, 127, 'the shell could not exec it');
    const mine = withArg(events, missing, 0);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    assert.deepEqual(
      { pid: mine[0].pid, ppid: mine[0].ppid, comm: mine[0].comm, ret: mine[0].ret, args: mine[0].args },
      { pid: sh.pid, ppid: process.pid, comm: 'sh', ret: -ENOENT, args: [missing] },
    );
  });

  test('arguments past 4 KiB are cut: the kept ones are a prefix, args_truncated is true', async (t) => {
    const token = uniqueToken();
    const long = Array.from({ length: 8 }, (_, i) => `${i}`.repeat(1000));
    const argv = ['/bin/echo', token, ...long];
    const { events } = await traceWhile(def, stepContext(t), () => run(argv[0], argv.slice(1)));
    const mine = withArg(events, token);
    assert.equal(mine.length, 1);
    const kept = mine[0].args as string[];
    assert.equal(mine[0].args_truncated, true);
    assert.ok(kept.length >= 3 && kept.length < argv.length, `kept ${kept.length} of ${argv.length} arguments`);
    assert.deepEqual(kept.slice(0, -1), argv.slice(0, kept.length - 1), 'whole arguments before the last kept one');
    assert.ok(argv[kept.length - 1].startsWith(kept.at(-1)!), 'the last kept argument is the start of the real one');
    assert.ok(Buffer.byteLength(kept.join('\0')) <= 4096, 'at most 4 KiB kept');
  });

  test('200 small arguments: at least 128 kept as a prefix, args_truncated says whether any were dropped', async (t) => {
    const token = uniqueToken();
    const argv = ['/bin/echo', token, ...Array.from({ length: 198 }, (_, i) => `a${i}`)];
    const { events } = await traceWhile(def, stepContext(t), () => run(argv[0], argv.slice(1)));
    const mine = withArg(events, token);
    assert.equal(mine.length, 1);
    const kept = mine[0].args as string[];
    assert.ok(kept.length >= 128, `kept ${kept.length}`);
    assert.deepEqual(kept, argv.slice(0, kept.length));
    assert.equal(mine[0].args_truncated, kept.length < argv.length);
  });

  test('filters: a match sees the exec, non-matching kernel and user filters see nothing', async (t) => {
    const token = uniqueToken();
    const steps = ['comm==echo', 'comm==nomatch_xyz', `pid==${process.pid}`, 'uid==65534', 'args~nomatch_xyz']
      .map((filter, i) => [def, stepContext(t, { id: `f${i}`, filter })] as [GadgetDefinition, ReturnType<typeof stepContext>]);
    const traced = await traceAllWhile(steps, () => run('/bin/echo', [token]));
    const [match, ...none] = traced.map((r) => withArg(r.events, token));
    assert.equal(match.length, 1, 'comm==echo sees it');
    none.forEach((events, i) => assert.deepEqual(events, [], `${steps[i + 1][1].filter.map((p) => `${p.field}${p.op}${p.value}`)} sees nothing`));
  });

  test('uid and gid of an unprivileged exec, and a kernel uid filter', async (t) => {
    const token = uniqueToken();
    const nobody = stepContext(t, { id: 'nobody', filter: 'uid==65534' });
    const root = stepContext(t, { id: 'root', filter: 'uid==0' });
    const [asNobody, asRoot] = await traceAllWhile([[def, nobody], [def, root]], () =>
      run('/bin/echo', [token], { uid: 65534, gid: 65534 }));
    const mine = withArg(asNobody.events, token);
    assert.equal(mine.length, 1);
    assert.deepEqual([mine[0].uid, mine[0].gid], [65534, 65534]);
    assert.deepEqual(withArg(asRoot.events, token), []);
  });

  test('a workload cgroup: the process inside is seen, one started outside is not', async (t) => {
    const inside = uniqueToken('inside');
    const outside = uniqueToken('outside');
    const cg = freshCgroup(t, uniqueToken('cg'));
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      // the shell moves itself into the cgroup before it execs echo
      const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec /bin/echo "$2"', 'sh', cg.dir, inside]);
      assert.equal(r.stdout, `${inside}\n`);
      await run('/bin/echo', [outside]);
    });
    const seen = withArg(events, inside);
    assert.equal(seen.length, 1, 'the exec inside the cgroup is seen');
    assert.equal(seen[0].cgroup_id, Number(cg.id));
    assert.deepEqual(withArg(events, outside), [], 'the exec outside is not');
    assert.ok(events.every((e) => e.cgroup_id === Number(cg.id)), 'only events from the cgroup');
  });

  test('an exec from a second thread is seen', async (t) => {
    const program = buildFixture(t, 'exec_from_thread', ['-pthread']);
    const token = uniqueToken();
    let r!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t), async () => {
      r = await run(program, ['/bin/echo', token]);
    });
    assert.equal(r.stdout, `${token}\n`, 'the thread exec\'d echo');
    const mine = withArg(events, token).filter((e) => e.comm === 'echo');
    assert.equal(mine.length, 1, `the exec of echo by a thread of ${program}: ${JSON.stringify(withArg(events, token))}`);
    assert.deepEqual([mine[0].pid, mine[0].ret, mine[0].args], [r.pid, 0, ['/bin/echo', token]]);
  });

  test('arguments in pages not yet read by the program are kept', async (t) => {
    const program = buildFixture(t, 'exec_literal');
    const token = uniqueToken();
    let r!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t), async () => {
      r = await run(program, [token]);
    });
    assert.equal(r.stdout, `${token}\n`);
    const echo = events.filter((e) => e.pid === r.pid && e.comm === 'echo');
    assert.equal(echo.length, 1, 'one exec of echo by the program');
    assert.deepEqual(echo[0].args, ['/bin/echo', token], 'the argv echo ran with');
  });
});
