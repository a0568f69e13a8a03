import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { topFile as def } from '../../src/gadgets/top/file.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { uniqueCommCopy } from '../helpers/proc.ts';
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

  test('short-lived processes reading fd 0 and writing fd 1 after dup2 (dd if= of=, shell redirections): every call and byte in one run; max_rows says what it cut', async (t) => {
    // A regression: these rows were always counted in the kernel, but a write-only row (0 reads)
    // sorts below every row that reads under the default sort (-reads,...), such as each new
    // process's reads of libc, and the default max_rows (20) cut it without a word.
    const dir = tempDir(t);
    const { bin: dd, comm } = uniqueCommCopy(dir, 'dd');
    const input = path.join(dir, 'in.dat');
    fs.writeFileSync(input, Buffer.alloc(40_960, 0x62)); // 10 blocks of 4 KiB: 10 reads of 4096 and one of 0 (end of file)
    const n = 12;
    const outputs: string[] = [];
    const opts = { filter: `comm==${comm}` };
    const [all, top] = await traceAllWhile(
      [
        [def, stepContext(t, { ...opts, id: 'all', options: { interval: '1h', max_rows: 100_000 } })],
        [def, stepContext(t, { ...opts, id: 'top', options: { interval: '1h' } })],
      ],
      () => {
        for (let i = 0; i < n; i++) {
          // dd opens if= and of= itself, dup2s them onto 0 and 1 and closes the originals
          const a = path.join(dir, `a${i}.dat`);
          execFileSync(dd, [`if=${input}`, `of=${a}`, 'bs=4096', 'status=none']);
          // the shell opens them and dup2s them onto 0 and 1; dd inherits them across exec
          const b = path.join(dir, `b${i}.dat`);
          execFileSync('sh', ['-c', 'exec "$0" bs=4096 status=none < "$1" > "$2"', dd, input, b]);
          outputs.push(a, b);
        }
      },
    );
    const inIno = fs.statSync(input).ino;
    const outIno = new Map(outputs.map((o) => [fs.statSync(o).ino, path.basename(o)]));
    const byPid = new Map<number, Event[]>();
    for (const e of all.events) byPid.set(e.pid as number, [...(byPid.get(e.pid as number) ?? []), e]);
    assert.equal(byPid.size, 2 * n, 'a row set per process');
    const written = new Set<string>();
    for (const [pid, rows] of byPid) {
      const reads = rows.filter((e) => e.inode === inIno);
      const writes = rows.filter((e) => outIno.has(e.inode as number));
      assert.deepEqual(reads.map((e) => [e.file, e.reads, e.rbytes, e.writes, e.wbytes, e.type, e.tid]), [['in.dat', 11, 40_960, 0, 0, 'R', pid]], `pid ${pid}'s reads of fd 0`);
      assert.equal(writes.length, 1, `pid ${pid} wrote one file`);
      const w = writes[0];
      assert.deepEqual([w.file, w.reads, w.rbytes, w.writes, w.wbytes, w.type, w.tid], [outIno.get(w.inode as number), 0, 0, 10, 40_960, 'R', pid], `pid ${pid}'s writes to fd 1`);
      written.add(w.file as string);
    }
    assert.equal(written.size, 2 * n, 'every output file, once');
    assert.deepEqual(all.outcome.warnings, []);
    assert.equal(all.outcome.lost, 0);
    // the same rows with the default max_rows: the first 20 by -reads,... and a warning with the count of the rest
    assert.ok(all.events.length > 20 + 2 * n, `${all.events.length} rows`);
    assert.equal(top.events.length, 20);
    assert.ok(top.events.every((e) => (e.reads as number) > 0), 'the write-only rows sort last');
    assert.deepEqual(top.outcome.warnings, [
      `max_rows (20) cut ${all.events.length - 20} rows in 1 of 1 intervals: the rows past the first 20 by sort (-reads,-writes,-rbytes,-wbytes) were not written, so their counts are in no output; raise max_rows, narrow the filter or change sort`,
    ]);
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
