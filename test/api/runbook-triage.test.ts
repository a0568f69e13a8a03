/**
 * recipes/runbooks/node-triage.mjs, run as a user would start it, against the real kernel: the
 * ticket names a CPU burner, a file written over and over, a loopback talker and its listener.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { kernelSkip, objectDir, REPO } from '../helpers/kernel.ts';
import { readJson, readNdjsonFile, tempDir } from '../runner/cli-helpers.ts';

const ZX = path.join(REPO, 'node_modules/.bin/zx');

test('node-triage.mjs: a ticket with what is hot on the CPU, the busiest files and what listens, for a window', { skip: kernelSkip() }, async () => {
  objectDir(); // built
  const out = tempDir('gadget-run-triage-');
  const work = tempDir('gadget-run-triage-work-');
  // a CPU burner with a name of its own (comm is the executable's name), a file written over and
  // over, and a listener on loopback: the three things the ticket must name
  const burner = path.join(work, 'triageburn');
  fs.copyFileSync('/usr/bin/yes', burner);
  fs.chmodSync(burner, 0o755);
  const token = path.join(work, `triage-${process.pid}.dat`);
  const burn = spawn(burner, [], { stdio: ['ignore', 'ignore', 'ignore'] });
  // 1 MiB written at offset 0 every 10 ms by one process: a busier file than any a busy node's others have
  const writer = spawn('python3', ['-c', `import os, time\nfd = os.open(${JSON.stringify(token)}, os.O_WRONLY | os.O_CREAT, 0o600)\nwhile True:\n  os.pwrite(fd, bytes(1 << 20), 0)\n  time.sleep(0.01)`], { stdio: 'ignore' });
  // a listener whose one client it sends 64 KiB every 50 ms: a talker on loopback
  const server = net.createServer((c) => {
    const tick = setInterval(() => c.write(Buffer.alloc(64 << 10)), 50);
    c.on('close', () => clearInterval(tick)).on('error', () => {});
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  const client = net.connect(port, '127.0.0.1').on('data', () => {});
  try {
    const r = await promisify(execFile)(ZX, [path.join(REPO, 'recipes/runbooks/node-triage.mjs'), '--for', '3s', '--out', out], { cwd: REPO }).then(
      (ok) => ({ code: 0, ...ok }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), path.join(out, 'ticket.md'));
    const ticket = fs.readFileSync(path.join(out, 'ticket.md'), 'utf8');
    assert.match(ticket, /^# node triage: PASSED\n/);
    const section = (title: string) => ticket.split(`## ${title}`)[1].split('\n## ')[0];
    // the burner runs all the window: it has samples; the ticket's table is the ten processes
    // with the most samples in the run's own cpu.ndjson, with their shares (on a busy machine
    // the burner need not be among them)
    const samples = readNdjsonFile(path.join(out, 'run/cpu.ndjson')) as { pid: number; comm: string; count: number }[];
    assert.ok(samples.some((e) => e.pid === burn.pid && e.comm === 'triageburn' && e.count > 0), 'the burner was sampled');
    const total = samples.reduce((n, e) => n + e.count, 0);
    const perProcess = new Map<string, number>();
    for (const e of samples) perProcess.set(`${e.comm} (${e.pid})`, (perProcess.get(`${e.comm} (${e.pid})`) ?? 0) + e.count);
    const expected = [...perProcess].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10).map(([p, n]) => `| ${p} | ${n} | ${((100 * n) / total).toFixed(1)} % |`);
    assert.match(section('On the CPU'), new RegExp(`^ \\(${total} samples`));
    assert.deepEqual(section('On the CPU').split('Hottest functions')[0].split('\n').filter((l) => /^\| .* %/.test(l)).slice(0, 10), expected);
    assert.match(section('Files read and written most'), new RegExp(`\\| python3 \\(${writer.pid}\\) \\| ${path.basename(token)} \\| 0 B \\| [\\d.]+ MiB \\|`), ticket);
    assert.match(section('Listening'), new RegExp(`\\| TCP \\| 127\\.0\\.0\\.1:${port} \\| node \\(${process.pid}\\) \\|`), ticket);
    assert.match(section('TCP connections moving the most bytes'), new RegExp(`\\| node \\(${process.pid}\\) \\| 127\\.0\\.0\\.1:${port} \\| 127\\.0\\.0\\.1:\\d+ \\| [\\d.]+ (KiB|MiB) \\|`), ticket);
    const summary = readJson(path.join(out, 'run/summary.json'));
    assert.deepEqual(summary.steps.map((s: { id: string; lost: number }) => [s.id, s.lost]), ['cpu', 'files', 'talkers', 'disks', 'processes', 'sockets'].map((id) => [id, 0]));
    for (const f of ['cpu.svg', 'cpu.folded', 'cpu.pb.gz', 'files.ndjson', 'talkers.ndjson', 'disks.ndjson', 'processes.csv', 'sockets.csv', 'report.html']) assert.ok(fs.statSync(path.join(out, 'run', f)).size > 0, f);
  } finally {
    burn.kill();
    writer.kill();
    client.destroy();
    server.close();
  }
});
