import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { kernelSkip, REPO } from '../helpers/kernel.ts';
import { freshNetns } from '../helpers/netns.ts';
import { stopChild } from '../helpers/proc.ts';
import { snapshot, stepContext, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['snapshot/socket'];

interface Ports { v4: number; v6: number; c4: number; c6: number; udp: number }

/** The fixture in a fresh network namespace, so the namespace holds exactly its sockets. */
async function socketsInNetns(t: TestContext): Promise<{ nsPath: string; child: ChildProcess; ports: Ports }> {
  const ns = freshNetns(t, `gr-sock-${process.pid}-${Math.random().toString(36).slice(2, 6)}`);
  // `ip netns exec` execs the command: the child's pid is the fixture's
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, path.join(REPO, 'test/fixtures/sockets.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => stopChild(child));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  while (!out.split('\n').includes('ready')) {
    if (child.exitCode !== null) throw new Error(`the sockets fixture exited (${child.exitCode}): ${out}`);
    await once(child.stdout!, 'data');
  }
  return { nsPath: ns.path, child, ports: JSON.parse(out.split('\n')[0]) as Ports };
}

/** Inodes of the sockets a process holds open, from /proc/PID/fd. */
function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const view = (e: Event) => `${e.protocol} ${e.saddr}:${e.sport} ${e.daddr}:${e.dport} ${e.state} v${e.ipversion}`;

describe('snapshot/socket', { skip: kernelSkip(def) }, () => {
  test('the sockets of a network namespace: addresses, ports, states, inodes and owner, exactly', async (t) => {
    const { nsPath, child, ports } = await socketsInNetns(t);
    const { outcome, events } = await snapshot(def, stepContext(t, { params: { netns: nsPath } }));
    assert.equal(outcome.events, events.length);
    assert.deepEqual(events.map(view).sort(), [
      `TCP 127.0.0.1:${ports.v4} 0.0.0.0:0 LISTEN v4`,
      `TCP 127.0.0.1:${ports.c4} 127.0.0.1:${ports.v4} ESTABLISHED v4`,
      `TCP 127.0.0.1:${ports.v4} 127.0.0.1:${ports.c4} ESTABLISHED v4`,
      `TCP ::1:${ports.v6} :::0 LISTEN v6`,
      `TCP ::1:${ports.c6} ::1:${ports.v6} ESTABLISHED v6`,
      `TCP ::1:${ports.v6} ::1:${ports.c6} ESTABLISHED v6`,
      `UDP 127.0.0.1:${ports.udp} 0.0.0.0:0 CLOSE v4`,
    ].sort());
    const inodes = socketInodes(child.pid!);
    for (const e of events) {
      assert.ok(inodes.has(e.inode as number), `${view(e)}: inode ${e.inode} is one of the fixture's sockets (${[...inodes].join(', ')})`);
      assert.equal(e.pid, child.pid, `${view(e)}: owned by the fixture`);
      assert.equal(e.comm, 'node');
      assert.equal(e.uid, 0);
      assert.equal(e.netns, Number(fs.statSync(nsPath).ino));
    }
    assert.equal(new Set(events.map((e) => e.inode)).size, events.length, 'one inode per socket');
  });

  test('proto picks the iterator; a filter narrows further; our own namespace does not have them', async (t) => {
    const { nsPath, ports } = await socketsInNetns(t);
    const udp = await snapshot(def, stepContext(t, { params: { netns: nsPath, proto: 'udp' } }));
    assert.deepEqual(udp.events.map(view), [`UDP 127.0.0.1:${ports.udp} 0.0.0.0:0 CLOSE v4`]);
    const listening = await snapshot(def, stepContext(t, { params: { netns: nsPath, proto: 'tcp' }, filter: 'state==LISTEN,ipversion==6' }));
    assert.deepEqual(listening.events.map(view), [`TCP ::1:${ports.v6} :::0 LISTEN v6`]);
    const ours = await snapshot(def, stepContext(t));
    const nsIno = Number(fs.statSync(nsPath).ino);
    assert.ok(ours.events.length > 0, 'our namespace has sockets too (this test runner\'s)');
    assert.ok(ours.events.every((e) => e.netns !== nsIno), 'none from the fixture\'s namespace');
  });
});
