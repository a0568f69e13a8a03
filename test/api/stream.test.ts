/**
 * stream() against the real kernel: it sees a process this test spawns with its exact
 * arguments, detaches and closes every kernel object when the loop is left (break, return(),
 * abort), hands over what was queued before an abort, and counts what a slow consumer could
 * not take instead of holding it: the queue never grows past its bound.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { OptionError, RecipeError, stream, UnknownGadgetError, type GadgetEvent } from '../../src/api/index.ts';
import { bpfFds, kernelSkip, objectDir } from '../helpers/kernel.ts';
import { newBpfFds } from '../helpers/leaks.ts';
import { tempDir } from '../runner/cli-helpers.ts';
import { busyboxRootfs, containerName, containerSkip, startContainer } from '../helpers/containers.ts';

const skip = kernelSkip();

/** The ids of every BPF link on the machine, as bpftool lists them: the kernel's view, not only our fds. */
function kernelLinks(): Set<number> {
  return new Set((JSON.parse(execFileSync('bpftool', ['link', 'show', '--json'], { encoding: 'utf8' })) as { id: number }[]).map((l) => l.id));
}

/** Poll `cond` until it holds (the events of a workload that has exited are on their way through the ring). */
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('stream(trace/exec) sees a spawned /bin/true with its exact args, and break detaches everything', { skip }, async (t) => {
  const before = bpfFds();
  const token = `stream-${process.pid}-${Date.now()}`;
  const events = stream('trace/exec', { filter: 'comm==true', objects: objectDir() });
  // a failed assertion must not leave the stream attached (and this process running)
  t.after(() => events.close());
  await events.ready;
  const links = newBpfFds(before).filter((f) => f.kind === 'bpf_link').map((f) => Number(f.info.link_id));
  assert.ok(links.length >= 4, `attached while streaming: the execve/execveat enter and exit links (${links})`);
  assert.deepEqual(links.filter((id) => !kernelLinks().has(id)), [], 'bpftool lists our links');
  execFileSync('/bin/true', [token, 'a b', '']);
  let seen: GadgetEvent | undefined;
  for await (const e of events) {
    if ((e.args as string[])[1] !== token) continue; // another /bin/true on this machine
    seen = e;
    break;
  }
  assert.ok(seen);
  assert.deepEqual(seen.args, ['/bin/true', token, 'a b', '']);
  assert.equal(seen.comm, 'true');
  assert.equal(seen.ret, 0);
  assert.equal(seen.ppid, process.pid);
  assert.equal(seen.uid, process.getuid!());
  assert.match(seen.timestamp as string, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(newBpfFds(before), [], 'break closed every link, program and map');
  const after = kernelLinks();
  assert.deepEqual(links.filter((id) => after.has(id)), [], 'none of our links is left for bpftool to see');
  const stats = events.stats();
  assert.ok(stats.delivered >= 1 && stats.events >= stats.delivered);
  assert.deepEqual(await events.next(), { done: true, value: events.stats() }, 'a closed stream stays done');
});

test('return() without a loop detaches too, and the abort signal ends the loop after what was queued', { skip }, async (t) => {
  const before = bpfFds();
  const first = stream('trace/exec', { objects: objectDir() });
  t.after(() => first.close());
  await first.ready;
  const closed = await first.close();
  assert.equal(closed.queued, 0);
  assert.deepEqual(newBpfFds(before), []);

  const token = `abort-${process.pid}-${Date.now()}`;
  const abort = new AbortController();
  const events = stream('trace/exec', { filter: 'comm==true', signal: abort.signal, objects: objectDir() });
  t.after(() => events.close());
  await events.ready;
  for (const n of ['1', '2', '3']) execFileSync('/bin/true', [token, n]);
  await until(() => events.stats().queued >= 3, 'three queued events');
  abort.abort();
  const got: string[][] = [];
  for await (const e of events) if ((e.args as string[])[1] === token) got.push(e.args as string[]);
  assert.deepEqual(got, [['/bin/true', token, '1'], ['/bin/true', token, '2'], ['/bin/true', token, '3']], 'queued events are delivered, then the loop ends');
  assert.deepEqual(newBpfFds(before), [], 'the abort detached and closed everything');
});

test('a slow consumer: events past the queue bound are counted as dropped, the queue stays bounded, every event is accounted for', { skip }, async (t) => {
  const dir = tempDir('gadget-run-stream-');
  const file = path.join(dir, 'target');
  fs.writeFileSync(file, '');
  const N = 3000;
  const LIMIT = 50;
  const before = bpfFds();
  const events = stream('trace/open', { filter: `path==${file}`, queue: LIMIT, objects: objectDir() });
  t.after(() => events.close());
  await events.ready;
  const heapBefore = process.memoryUsage().heapUsed;
  // a child opens the file N times as fast as it can, while this consumer takes one event per 5 ms
  const child = spawn(process.execPath, ['-e', `const fs = require('fs'); for (let i = 0; i < ${N}; i++) fs.closeSync(fs.openSync(${JSON.stringify(file)}, 'r'));`], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let taken = 0;
  let maxSeen = 0;
  for await (const e of events) {
    assert.equal(e.path, file);
    taken++;
    maxSeen = Math.max(maxSeen, events.stats().queued);
    await sleep(5);
    // stop once every open is counted and nothing waits any more
    const s = events.stats();
    if (s.events + s.lost === N && s.queued === 0) break;
  }
  await exited;
  const s = events.stats();
  t.diagnostic(`${N} opens: ${JSON.stringify(s)}, heap grew ${((process.memoryUsage().heapUsed - heapBefore) / 1024).toFixed(0)} KiB`);
  assert.equal(s.events + s.lost, N, 'every open reached the stream or was counted lost in the kernel');
  assert.equal(s.delivered, taken);
  assert.equal(s.delivered + s.dropped, s.events, 'an event is either delivered or counted as dropped');
  assert.ok(s.dropped > 0, `the slow consumer dropped events (${JSON.stringify(s)})`);
  assert.ok(s.maxQueued <= LIMIT && maxSeen <= LIMIT, `the queue never held more than ${LIMIT} (${s.maxQueued})`);
  assert.equal(s.limit, LIMIT);
  // bounded memory: the dropped events were never kept (a generous bound: 50 decoded events are a few KB)
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024);
  assert.deepEqual(newBpfFds(before), []);
});

test('containers: only the selected container\'s events', { skip: containerSkip() }, async (t) => {
  const rootfs = busyboxRootfs(t);
  const a = startContainer(t, containerName('stream-a'), rootfs, ['/bin/sleep', '60']);
  const b = startContainer(t, containerName('stream-b'), rootfs, ['/bin/sleep', '60']);
  const token = `containers-${process.pid}-${Date.now()}`;
  const events = stream('trace/exec', { containers: { container: a.name }, objects: objectDir() });
  t.after(() => events.close());
  await events.ready;
  for (const name of [a.name, b.name]) execFileSync('podman', ['exec', name, '/bin/true', token], { stdio: 'ignore' });
  execFileSync('/bin/true', [token]);
  await until(() => events.stats().queued >= 1, 'the selected container\'s exec');
  await sleep(300); // the execs above have returned: anything else they made is queued by now
  const mine: GadgetEvent[] = [];
  while (events.stats().queued > 0) {
    const r = await events.next();
    if (!r.done && (r.value.args as string[]).includes(token)) mine.push(r.value);
  }
  assert.deepEqual(mine.map((e) => e.args), [['/bin/true', token]], 'one exec: container a\'s, not b\'s nor the host\'s');
  assert.notEqual(mine[0].mntns_id, fs.statSync('/proc/self/ns/mnt').ino, 'in the container\'s mount namespace');
});

test('a gadget that is not live, an unknown gadget or a bad filter is a typed error from next() and ready', async () => {
  const snapshot = stream('snapshot/process');
  await assert.rejects(snapshot.ready, (e: unknown) => e instanceof OptionError && /snapshot\/process is a snapshot gadget: only the events of stream, packet and interval gadgets come as they happen; run it in a recipe with run\(\)/.test(e.message));
  await assert.rejects(snapshot.next(), OptionError);
  assert.deepEqual((await snapshot.next()).done, true, 'the error is thrown once, then the stream is done');
  await assert.rejects(stream('top/tcp', { maxRows: 0 }).ready, (e: unknown) => e instanceof RecipeError && e.problems[0].path === 'maxRows');
  await assert.rejects(stream('trace/exc').next(), UnknownGadgetError);
  const bad = stream('trace/exec', { filter: 'pidd==1' });
  await assert.rejects(bad.ready, (e: unknown) => e instanceof RecipeError && e.problems[0].path === 'filter' && e.problems[0].where === 'stream()');
  assert.throws(() => stream('trace/exec', { queue: 0 }), OptionError);
});

test("stream(top/tcp): each interval's rows come at its end, numbered, and add up to the bytes sent; break detaches", { skip }, async (t) => {
  const links = kernelLinks();
  const rows = stream('top/tcp', { interval: '200ms', filter: `pid==${process.pid}`, maxRows: 100, objects: objectDir() });
  t.after(() => rows.close());
  await rows.ready;
  // a loopback server in this process sends 1 MiB to its client, in this process too
  const net = await import('node:net');
  const server = net.createServer((c) => c.end(Buffer.alloc(1 << 20))).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  const got = await new Promise<number>((resolve, reject) => {
    let n = 0;
    net.connect(port, '127.0.0.1').on('data', (d) => (n += d.length)).on('end', () => resolve(n)).on('error', reject);
  });
  server.close();
  assert.equal(got, 1 << 20);
  let sent = 0;
  let received = 0;
  const intervals: number[] = [];
  for await (const r of rows) {
    intervals.push(r.interval as number);
    if (r.sport === port) sent += r.sent as number;
    if (r.dport === port) received += r.received as number;
    if (sent === 1 << 20 && received === 1 << 20) break;
  }
  assert.equal(sent, 1 << 20, 'the server end sent every byte, over the intervals');
  assert.equal(received, 1 << 20, 'the client end received every byte');
  assert.ok(intervals.every((n, i) => n >= 1 && (i === 0 || n >= intervals[i - 1])), `intervals in order: ${intervals}`);
  assert.equal(rows.stats().dropped, 0);
  await until(() => [...kernelLinks()].every((id) => links.has(id)), 'the links to be gone');
});
