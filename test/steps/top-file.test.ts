import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { topFile as def } from '../../src/gadgets/top/file.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { stepContext, tempDir, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

/** `n` bytes written to `file` in writes of `chunk` bytes (Node's writeSync: one write(2) each) */
function writeFile(file: string, n: number, chunk: number): number {
  const fd = fs.openSync(file, 'w');
  let calls = 0;
  try {
    for (let left = n; left > 0; left -= chunk, calls++) fs.writeSync(fd, Buffer.alloc(Math.min(chunk, left), 0x61));
  } finally {
    fs.closeSync(fd);
  }
  return calls;
}

const sum = (rows: Event[], f: string) => rows.reduce((n, r) => n + (r[f] as number), 0);

describe('top/file', { skip: kernelSkip(def) }, () => {
  test('writes to two files: exact counts and bytes per file, sorted by wbytes, nothing for another pid', async (t) => {
    const dir = tempDir(t);
    const a = path.join(dir, `${uniqueToken('a')}.dat`);
    const b = path.join(dir, `${uniqueToken('b')}.dat`);
    let callsA = 0;
    let callsB = 0;
    const [mine, other] = await traceAllWhile(
      [
        // one interval longer than the test: the rows come from stop's last, partial interval
        [def, stepContext(t, { id: 'mine', filter: `pid==${process.pid}`, options: { interval: '1h', sort: '-wbytes' } })],
        [def, stepContext(t, { id: 'other', filter: `pid==${process.pid + 1}`, options: { interval: '1h' } })],
      ],
      () => {
        callsA = writeFile(a, 100_000, 1000);
        callsB = writeFile(b, 30_000, 3000);
        fs.readFileSync(a);
      },
    );
    const rows = mine.events.filter((e) => e.file === path.basename(a) || e.file === path.basename(b));
    assert.deepEqual(
      rows.map((r) => [r.file, r.writes, r.wbytes, r.type, r.pid, r.tid, r.interval]),
      [
        [path.basename(a), callsA, 100_000, 'R', process.pid, process.pid, 1],
        [path.basename(b), callsB, 30_000, 'R', process.pid, process.pid, 1],
      ],
    );
    assert.equal(callsA, 100);
    const ra = rows[0];
    assert.equal(ra.rbytes, 100_000, 'readFileSync read the whole file');
    assert.ok((ra.reads as number) >= 1);
    assert.equal(ra.inode, fs.statSync(a).ino);
    const st = fs.statSync(a);
    assert.equal(ra.dev, `${Math.floor(st.dev / 256) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`);
    assert.equal(ra.comm, 'node');
    assert.ok((ra.mntns_id as number) > 0 && (ra.cgroup_id as number) > 0);
    assert.ok(Date.parse(ra.interval_start as string) <= Date.parse(ra.interval_end as string));
    const wbytes = mine.events.map((e) => e.wbytes as number);
    assert.deepEqual(wbytes, [...wbytes].sort((x, y) => y - x), 'rows sorted by -wbytes');
    assert.deepEqual(other.events.filter((e) => e.file === path.basename(a)), []);
    assert.equal(mine.outcome.lost, 0);
  });

  test('several intervals: each counts its own writes; totals add them up once, as interval 0', async (t) => {
    const dir = tempDir(t);
    const a = path.join(dir, `${uniqueToken('tot')}.dat`);
    const fd = fs.openSync(a, 'w');
    t.after(() => fs.closeSync(fd));
    const ctx = stepContext(t, { filter: `pid==${process.pid},file==${path.basename(a)}`, options: { interval: '100ms', totals: true } });
    const { events } = await traceWhile(def, ctx, async () => {
      for (let i = 0; i < 5; i++) {
        fs.writeSync(fd, Buffer.alloc(500));
        await sleep(150);
      }
    });
    const intervals = events.filter((e) => e.interval !== 0);
    const totals = events.filter((e) => e.interval === 0);
    assert.ok(new Set(intervals.map((e) => e.interval)).size >= 2, `writes spread over intervals: ${JSON.stringify(intervals.map((e) => e.interval))}`);
    assert.equal(sum(intervals, 'writes'), 5);
    assert.equal(sum(intervals, 'wbytes'), 2500);
    assert.deepEqual(totals.map((e) => [e.writes, e.wbytes]), [[5, 2500]]);
    assert.equal(events.at(-1), totals[0], 'the totals come last');
  });

  test('non-regular files only with all_files: a pipe is type O', async (t) => {
    // a FIFO opened read-write: a pipe without a second process (Node has no pipe(2))
    const fifo = path.join(tempDir(t), 'fifo');
    execFileSync('mkfifo', [fifo]);
    const wfd = fs.openSync(fifo, 'r+');
    t.after(() => fs.closeSync(wfd));
    const opts = { filter: `pid==${process.pid},type==O`, options: { interval: '1h' } };
    const [regular, all] = await traceAllWhile(
      [
        [def, stepContext(t, { ...opts, id: 'regular' })],
        [def, stepContext(t, { ...opts, id: 'all', params: { all_files: true } })],
      ],
      () => {
        for (let i = 0; i < 3; i++) fs.writeSync(wfd, Buffer.alloc(10));
      },
    );
    assert.deepEqual(regular.events, []);
    const ino = fs.fstatSync(wfd).ino;
    assert.deepEqual(all.events.filter((e) => e.inode === ino).map((e) => [e.writes, e.wbytes, e.type]), [[3, 30, 'O']]);
  });
});
