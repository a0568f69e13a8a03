import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import { histogramBars } from '../../src/gadgets/profile/block-io/histogram.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { tempDir, traceWhile, stepContext, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['profile/block-io'];

/** A loop device over a fresh 8 MiB file, detached after the test. */
function loopDevice(t: TestContext): string {
  const file = path.join(tempDir(t), 'disk.img');
  fs.writeFileSync(file, Buffer.alloc(8 << 20));
  const dev = execFileSync('losetup', ['--find', '--show', file]).toString().trim();
  t.after(() => execFileSync('losetup', ['-d', dev]));
  return dev;
}

/** O_DIRECT, synchronous, one block per request: each dd block is one request the disk completes. */
function dd(args: string[]): void {
  execFileSync('dd', ['bs=4096', ...args], { stdio: 'pipe' });
}

const total = (rows: Event[], op: string) => rows.filter((r) => r.op === op).reduce((n, r) => n + (r.count as number), 0);

describe('profile/block-io', { skip: kernelSkip(def) }, () => {
  test('O_DIRECT reads and writes to a loop device: every request counted once, in log2 buckets', async (t) => {
    const dev = loopDevice(t);
    const name = path.basename(dev);
    const { outcome, events } = await traceWhile(def, stepContext(t, { params: { device: dev } }), () => {
      dd(['if=/dev/zero', `of=${dev}`, 'count=37', 'oflag=direct']);
      dd([`if=${dev}`, 'of=/dev/null', 'count=23', 'iflag=direct']);
    });
    assert.equal(outcome.lost, 0);
    assert.equal(outcome.events, events.length);
    assert.ok(events.every((r) => r.device === name), `only ${name}: ${JSON.stringify(events)}`);
    assert.equal(total(events, 'write'), 37);
    assert.equal(total(events, 'read'), 23);
    for (const r of events) {
      const low = r.low_us as number;
      assert.equal(r.high_us, low === 0 ? 1 : low * 2 - 1, `a log2 bucket: ${JSON.stringify(r)}`);
      assert.ok(low === 0 || Number.isInteger(Math.log2(low)));
    }
    const [major, minor] = fs.readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim().split(':').map(Number);
    assert.deepEqual([events[0].major, events[0].minor], [major, minor]);
    const bars = histogramBars(events);
    assert.match(bars, new RegExp(`${name} read: 23 requests`));
    assert.match(bars, new RegExp(`${name} write: 37 requests`));
  });

  test('a filter on op keeps only those rows; another device sees none of ours', async (t) => {
    const dev = loopDevice(t);
    const other = loopDevice(t);
    const [writes, elsewhere] = [stepContext(t, { params: { device: dev }, filter: 'op==write' }), stepContext(t, { params: { device: other } })];
    const { events } = await traceWhile(def, writes, () => {
      dd(['if=/dev/zero', `of=${dev}`, 'count=5', 'oflag=direct']);
      dd([`if=${dev}`, 'of=/dev/null', 'count=5', 'iflag=direct']);
    });
    assert.equal(total(events, 'write'), 5);
    assert.equal(total(events, 'read'), 0);
    const none = await traceWhile(def, elsewhere, () => dd(['if=/dev/zero', `of=${dev}`, 'count=5', 'oflag=direct']));
    assert.deepEqual(none.events, []);
  });

  test('a device that does not exist is an error naming it', () => {
    assert.throws(() => def.constants!({ device: 'nosuchdisk0' }), /no block device "nosuchdisk0"/);
  });
});
