/**
 * What redaction costs as capture seals a spool into DIR/raw: 1M trace/open-shaped
 * events (a few with secrets in them), side by side:
 *   read only      the spool read line by line, nothing else (the floor)
 *   prefilter      Redactor.file on a spool with no secret: one combined RE2 test a line, no write
 *   redact (0.1%)  Redactor.file with 1 line in 1000 holding a secret: the test, then a
 *                  rewrite that parses and re-stringifies only those lines
 *   parse all      what a per-event redactor would cost: JSON.parse + walk + stringify every line
 * No root, no kernel. node --import tsx bench/redact.ts [--n 1000000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ndjsonBatches } from '../src/runner/artifacts.ts';
import { compileRedactor } from '../src/runner/redact.ts';

const n = Number(process.argv[process.argv.indexOf('--n') + 1]) || 1_000_000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-redact-'));

function spool(name: string, secretEvery: number): string {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  let chunk = '';
  for (let i = 0; i < n; i++) {
    const p = secretEvery && i % secretEvery === 0 ? `/srv/app/deploy --token=s3cr3t${i}` : `/usr/lib/x86_64-linux-gnu/libc.so.6`;
    chunk += JSON.stringify({ timestamp: '2026-12-01T15:00:00.123456789Z', pid: 4242, tid: 4242, uid: 0, gid: 0, comm: 'node', path: p, flags: 524288, flag_names: 'O_RDONLY|O_CLOEXEC', mode: 0, ret: 3, fd: 3, err: 0, err_name: '', mntns_id: 4026531841, cgroup_id: 1234 }) + '\n';
    if (chunk.length > 1 << 20) (fs.writeSync(fd, chunk), (chunk = ''));
  }
  fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  return file;
}

const redactor = compileRedactor();
async function time(what: string, fn: () => Promise<unknown>): Promise<{ what: string; s: number; result: unknown }> {
  const t = performance.now();
  const result = await fn();
  return { what, s: (performance.now() - t) / 1000, result };
}

const clean = spool('clean.ndjson', 0);
const dirty = spool('dirty.ndjson', 1000);
const copy = path.join(dir, 'copy.ndjson');
fs.copyFileSync(dirty, copy);
const rows = [
  await time('read only', async () => {
    let lines = 0;
    for await (const batch of ndjsonBatches(clean)) lines += batch.length;
    return lines;
  }),
  await time('prefilter (no secret)', () => redactor.file(clean)),
  await time('redact (0.1% secrets)', () => redactor.file(dirty)),
  await time('parse all', async () => {
    let changed = 0;
    for await (const batch of ndjsonBatches(copy)) for (const l of batch) if (JSON.stringify(redactor.value(JSON.parse(l))) !== l) changed++;
    return changed;
  }),
];
const mb = fs.statSync(clean).size / 1e6;
console.log(`${n} events, ${mb.toFixed(0)} MB a spool`);
for (const r of rows) console.log(`${r.what.padEnd(24)} ${r.s.toFixed(2)} s  ${(n / r.s / 1e6).toFixed(2)} M lines/s  (${String(r.result)})`);
fs.rmSync(dir, { recursive: true, force: true });
