import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { topBlockio as def } from '../../src/gadgets/top/block-io.ts';
import { eachVariant, kernelSkip } from '../helpers/kernel.ts';
import { stepContext, tempDir, traceAllWhile, type Event } from '../helpers/session.ts';

/** A loop device over a fresh 8 MiB file, detached after the test; its major and minor. */
function loopDevice(t: TestContext): { dev: string; major: number; minor: number } {
  const file = path.join(tempDir(t), 'disk.img');
  fs.writeFileSync(file, Buffer.alloc(8 << 20));
  const dev = execFileSync('losetup', ['--find', '--show', file]).toString().trim();
  t.after(() => execFileSync('losetup', ['-d', dev]));
  const [major, minor] = fs.readFileSync(`/sys/class/block/${path.basename(dev)}/dev`, 'utf8').trim().split(':').map(Number);
  return { dev, major, minor };
}

/** O_DIRECT and synchronous: each dd block is one request, none merged. */
function dd(args: string[]): void {
  execFileSync('dd', ['bs=4096', ...args], { stdio: 'pipe' });
}

const sum = (rows: Event[], f: string) => rows.reduce((n, r) => n + (r[f] as number), 0);

describe('top/block-io', { skip: kernelSkip(def) }, () => {
  test('O_DIRECT writes and reads on a loop device: exact bytes and I/Os per direction for dd, the submitter', async (t) => {
    const { dev, major, minor } = loopDevice(t);
    // the fresh device is only ours, but udev may probe it: dd's rows only
    const filter = `comm==dd,major==${major},minor==${minor}`;
    const [mine, other] = await traceAllWhile(
      [
        [def, stepContext(t, { id: 'mine', filter, options: { interval: '1h' } })],
        [def, stepContext(t, { id: 'other', filter: `comm==nosuchcomm,major==${major}`, options: { interval: '1h' } })],
      ],
      () => {
        dd(['if=/dev/zero', `of=${dev}`, 'count=37', 'oflag=direct']);
        dd([`if=${dev}`, 'of=/dev/null', 'count=23', 'iflag=direct']);
      },
    );
    const writes = mine.events.filter((e) => e.rw === 'W');
    const reads = mine.events.filter((e) => e.rw === 'R');
    assert.equal(writes.length, 1, `one writer dd: ${JSON.stringify(mine.events)}`);
    assert.equal(reads.length, 1, `one reader dd: ${JSON.stringify(mine.events)}`);
    assert.deepEqual([sum(writes, 'ios'), sum(writes, 'bytes')], [37, 37 * 4096]);
    assert.deepEqual([sum(reads, 'ios'), sum(reads, 'bytes')], [23, 23 * 4096]);
    assert.deepEqual([writes[0].op, reads[0].op], ['write', 'read']);
    assert.notEqual(writes[0].pid, reads[0].pid, 'two dd processes, one row each');
    for (const r of mine.events) {
      assert.equal(r.comm, 'dd');
      assert.ok((r.pid as number) > 0 && r.pid !== process.pid);
      assert.ok((r.time_us as number) >= 0);
      assert.equal(r.dev_t, (major << 20) | minor);
      assert.ok((r.mntns_id as number) > 0 && (r.cgroup_id as number) > 0);
    }
    assert.deepEqual(mine.events.map((e) => e.ios), [37, 23], 'sorted by -ios');
    assert.deepEqual(other.events, []);
    assert.equal(mine.outcome.lost, 0);
  });

  test('buffered writes merged into fewer requests: every byte counted once, at completion', async (t) => {
    const { dev, major, minor } = loopDevice(t);
    const BLOCKS = 256;
    const [all] = await traceAllWhile([[def, stepContext(t, { id: 'all', filter: `major==${major},minor==${minor},rw==W`, options: { interval: '1h' } })]], () => {
      // through the page cache: write-back (here sync's fsync) sends the pages as a few large requests
      dd(['if=/dev/zero', `of=${dev}`, `count=${BLOCKS}`]);
      execFileSync('sync', [dev]);
    });
    const bytes = sum(all.events, 'bytes');
    const ios = sum(all.events, 'ios');
    assert.equal(bytes, BLOCKS * 4096, JSON.stringify(all.events));
    assert.ok(ios < BLOCKS, `the pages went as merged requests (${ios} writes), which is what this test is about`);
  });

  test('every hook variant this kernel runs: the same rows for dd, side by side', async (t) => {
    const { here, notHere } = await eachVariant(def);
    for (const why of notHere) t.diagnostic(`not on this kernel: ${why}`);
    assert.ok(here.length >= 1, 'the gadget is supported here, so one variant at least runs');
    const { dev, major, minor } = loopDevice(t);
    const filter = `comm==dd,major==${major},minor==${minor}`;
    const traced = await traceAllWhile(here.map(([name, d]) => [d, stepContext(t, { id: name.replace(/\W+/g, '_'), filter, options: { interval: '1h' } })]), () => {
      dd(['if=/dev/zero', `of=${dev}`, 'count=19', 'oflag=direct']);
      dd([`if=${dev}`, 'of=/dev/null', 'count=11', 'iflag=direct']);
    });
    // the latency is each hook's own moment; everything else is the same
    const rows = traced.map(({ events }) => events.map(({ time_us, interval_start, interval_end, ...rest }) => rest));
    assert.deepEqual(rows[0].map((r) => [r.op, r.ios, r.bytes]), [['write', 19, 19 * 4096], ['read', 11, 11 * 4096]], here[0][0]);
    here.forEach(([name], i) => assert.deepEqual(rows[i], rows[0], `${name} and ${here[0][0]} disagree`));
  });
});
