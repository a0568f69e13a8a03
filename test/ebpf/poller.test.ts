import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test, type TestContext } from 'node:test';
import { native } from '../../src/ebpf/libbpf.ts';
import { Poller, sharedPoller, type Registration, type Wakeup } from '../../src/ebpf/poller.ts';
import { gadgets, openSession, type StepSession } from '../../src/steps/index.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { readNdjson, stepContext, tempDir, uniqueToken } from '../helpers/session.ts';
import { spoolOf } from '../../src/steps/modes/mode.ts';

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

/** An eventfd (closed after the test): a readable fd whose readiness the test controls, no root needed. */
function eventfd(t: TestContext): { fd: number; signal(): void } {
  const n = native();
  const fd = n.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  assert.ok(fd >= 0, 'eventfd');
  t.after(() => n.close(fd));
  return { fd, signal: () => assert.equal(n.write(fd, ONE, 8), 8) };
}

/** epoll fds this process holds (libuv's own included): the poller's must come and go */
function epollFds(): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[eventpoll]';
    } catch {
      return false;
    }
  }).length;
}

/** Wait on `reg` until it reports its fd ready: a tick may come first (it wakes every waiter). */
async function untilReady(reg: Registration, first: Promise<Wakeup> = reg.wait()): Promise<Wakeup> {
  for (let why = await first; ; why = await reg.wait()) if (why !== 'tick') return why;
}

describe('Poller', () => {
  test('20 fds: one async wait in flight, and each fd wakes its own waiter', async (t) => {
    const poller = new Poller();
    const fds = Array.from({ length: 20 }, () => eventfd(t));
    const regs = fds.map((f) => poller.register(f.fd));
    try {
      const waits = regs.map((r) => r.wait());
      assert.equal(poller.pendingAsyncCalls, 1, 'one koffi async call for 20 waiters');
      fds.forEach((f) => f.signal());
      const why = await Promise.all(regs.map((r, i) => untilReady(r, waits[i])));
      assert.deepEqual(why, Array(20).fill('ready'));
      assert.equal(poller.peakAsyncCalls, 1, 'never more than one async call at a time');
    } finally {
      await Promise.all(regs.map((r) => r.close()));
    }
  });

  test('edge-triggered: an fd left readable wakes once, then only the tick wakes it', async (t) => {
    const poller = new Poller();
    const f = eventfd(t);
    const reg = poller.register(f.fd);
    try {
      f.signal(); // never read: level-triggered epoll would report it on every wait
      assert.equal(await reg.wait(), 'ready');
      assert.equal(await reg.wait(), 'tick');
      assert.equal(await reg.wait(), 'tick');
      f.signal();
      assert.equal(await reg.wait(), 'ready', 'a new write is a new edge');
    } finally {
      await reg.close();
    }
  });

  test('an fd signalled while its owner was busy wakes the next wait at once', async (t) => {
    const poller = new Poller();
    const busy = eventfd(t);
    const other = eventfd(t);
    const busyReg = poller.register(busy.fd);
    const otherReg = poller.register(other.fd);
    try {
      const otherWait = otherReg.wait(); // keeps a wait in flight that collects busy's edge
      busy.signal();
      other.signal();
      assert.equal(await untilReady(otherReg, otherWait), 'ready');
      assert.equal(await busyReg.wait(), 'ready');
    } finally {
      await busyReg.close();
      await otherReg.close();
    }
  });

  test("closing one registration wakes its wait and leaves the others' alone; the last closes the epoll fd", async (t) => {
    const before = epollFds();
    const poller = new Poller();
    const [a, b, c] = [eventfd(t), eventfd(t), eventfd(t)];
    const [ra, rb, rc] = [a, b, c].map((f) => poller.register(f.fd));
    assert.equal(epollFds(), before + 1, 'one epoll fd for three registrations');
    const waits: Promise<Wakeup>[] = [ra.wait(), rb.wait(), rc.wait()];
    await ra.close();
    assert.equal(await waits[0], 'closed');
    assert.equal(await ra.wait(), 'closed', 'a closed registration never blocks');
    b.signal();
    assert.equal(await untilReady(rb, waits[1]), 'ready', 'the others still wake on their fds');
    await rb.close();
    assert.equal(poller.size, 1);
    assert.ok(poller.fd >= 0, 'the epoll fd stays while a registration remains');
    c.signal();
    assert.equal(await untilReady(rc, waits[2]), 'ready');
    const pending = rc.wait();
    await rc.close(); // with a wait in flight: the epoll fd closes when it returns
    assert.equal(await pending, 'closed');
    assert.equal(poller.fd, -1);
    assert.equal(poller.pendingAsyncCalls, 0);
    assert.equal(epollFds(), before, 'the last registration closed the epoll fd');
    // and the poller opens a new one on demand
    const again = poller.register(a.fd);
    a.signal();
    assert.equal(await untilReady(again), 'ready');
    await again.close();
    assert.equal(epollFds(), before);
  });

  test('an fd registered twice is refused, naming the fd', (t) => {
    const poller = new Poller();
    const f = eventfd(t);
    const reg = poller.register(f.fd);
    t.after(() => reg.close());
    assert.throws(() => poller.register(f.fd), { message: `poller: fd ${f.fd} is already registered` });
  });
});

describe('stream sessions share the poller', { skip: kernelSkip(gadgets['trace/open']) }, () => {
  test('20 trace/open sessions: one async wait between them, every session gets the opens, stopping some leaves the rest', async (t) => {
    const def = gadgets['trace/open'];
    const file = path.join(tempDir(t), uniqueToken('poller'));
    fs.writeFileSync(file, 'x');
    const poller = sharedPoller();
    const ctxs = Array.from({ length: 20 }, (_, i) => ({ ...stepContext(t, { id: `s${i}`, filter: `pid==${process.pid}`, options: { buffer: '64KiB' } }) }));
    const sessions: StepSession[] = [];
    try {
      sessions.push(...(await Promise.all(ctxs.map((ctx) => openSession(def, ctx)))));
      poller.peakAsyncCalls = poller.pendingAsyncCalls;
      for (const s of sessions) s.start();
      assert.equal(poller.size, 20, 'every session registered its ring');
      for (let i = 0; i < 5; i++) {
        fs.closeSync(fs.openSync(file, 'r'));
        await sleep(15); // past a tick, so the sessions drain and wait again between opens
      }
      assert.equal(poller.pendingAsyncCalls, 1, 'one koffi async call pending for 20 waiting sessions');
      // stopping half of them leaves the other half waiting and receiving
      for (const s of sessions.slice(0, 10)) await s.stop();
      sessions.splice(0, 10);
      assert.equal(poller.size, 10);
      for (let i = 0; i < 3; i++) {
        fs.closeSync(fs.openSync(file, 'r'));
        await sleep(15);
      }
      assert.equal(poller.pendingAsyncCalls, 1);
    } finally {
      for (const s of sessions.splice(0)) await s.stop();
    }
    assert.equal(poller.peakAsyncCalls, 1, 'never more than one at a time');
    assert.equal(poller.size, 0);
    assert.equal(poller.fd, -1, 'the last session closed the epoll fd');
    const counts = ctxs.map((ctx) => readNdjson(spoolOf(ctx)).filter((e) => e.path === file).length);
    assert.deepEqual(counts, [...Array(10).fill(5), ...Array(10).fill(8)]);
  });
});
