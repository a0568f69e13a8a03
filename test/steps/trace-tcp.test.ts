import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { buildFixture } from '../helpers/fixtures.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { freePort, LOOPBACKS, tcpServer } from '../helpers/net.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/tcp'];
const me = `pid==${process.pid}`;

/** Events of one listener port (as sport or dport), without their timestamps and ids. */
function ofPort(events: Event[], port: number): Event[] {
  return events.filter((e) => e.sport === port || e.dport === port).map(({ timestamp, mntns_id, cgroup_id, ...rest }) => {
    assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.deepEqual([mntns_id, cgroup_id], [mntnsOf(process.pid), Number(cgroupIdOf(cgroupDirOf(process.pid)))]);
    return rest;
  });
}

/** One connection over loopback, connected, accepted and closed from both ends by this process. */
async function connection(t: import('node:test').TestContext, host: string): Promise<{ port: number; client: number }> {
  const { port, accepted, server } = await tcpServer(t, host);
  const c = net.connect(port, host);
  await Promise.all([once(c, 'connect'), once(server, 'connection')]);
  const client = c.localPort!;
  c.end();
  accepted[0].end();
  c.resume();
  accepted[0].resume();
  await Promise.all([once(c, 'close'), once(accepted[0], 'close')]);
  return { port, client };
}

/** A connect to a loopback port nothing listens on. */
async function refused(host: string): Promise<number> {
  const port = await freePort(host);
  const c = net.connect(port, host);
  const [err] = (await once(c, 'error').catch((e) => [e])) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
  return port;
}

describe('trace/tcp', { skip: kernelSkip(def) }, () => {
  for (const { host, ipversion } of LOOPBACKS) {
    test(`connect, accept and close over ${host}: exact addresses and ports`, async (t) => {
      let conn!: { port: number; client: number };
      const { events } = await traceWhile(def, stepContext(t, { filter: me }), async () => {
        conn = await connection(t, host);
      });
      const { port, client } = conn;
      const who = { pid: process.pid, tid: process.pid, uid: 0, gid: 0, comm: fs.readFileSync('/proc/self/comm', 'utf8').trim(), ipversion, saddr: host, daddr: host };
      const seen = ofPort(events, port);
      const accept = seen.find((e) => e.operation === 'accept');
      assert.ok(accept && (accept.ret as number) >= 0, JSON.stringify(seen));
      const sorted = (list: Event[]) => [...list].sort((a, b) => `${a.operation} ${a.sport}`.localeCompare(`${b.operation} ${b.sport}`));
      assert.deepEqual(sorted(seen), sorted([
        { ...who, operation: 'connect', sport: client, dport: port, ret: 0, err_name: '' },
        { ...who, operation: 'accept', sport: port, dport: client, ret: accept.ret, err_name: '' },
        // the close of each end
        { ...who, operation: 'close', sport: client, dport: port, ret: 0, err_name: '' },
        { ...who, operation: 'close', sport: port, dport: client, ret: 0, err_name: '' },
      ]));
      // a connection closes after it was made
      const order = events.filter((e) => e.sport === client || e.dport === client).map((e) => e.operation);
      assert.equal(order[0], 'connect', order.join(' '));
    });

    test(`a refused connect over ${host}: ret -111, ECONNREFUSED`, async (t) => {
      let port = 0;
      const { events } = await traceWhile(def, stepContext(t, { filter: me }), async () => {
        port = await refused(host);
      });
      const seen = ofPort(events, port);
      assert.equal(seen.length, 1, JSON.stringify(seen));
      const { sport, ...rest } = seen[0];
      assert.ok((sport as number) > 0, 'the port the connect was made from');
      assert.deepEqual(rest, {
        operation: 'connect', pid: process.pid, tid: process.pid, uid: 0, gid: 0, comm: fs.readFileSync('/proc/self/comm', 'utf8').trim(),
        ipversion, saddr: host, daddr: host, dport: port, ret: -111, err_name: 'ECONNREFUSED',
      });
    });
  }

  test('filters: matching ones see the connection, non-matching ones nothing', async (t) => {
    const cases: [string, string, number][] = [
      ['pid', me, 4],
      ['operation', `${me},operation==close`, 2],
      ['other pid', 'pid==1', 0],
      ['other comm', 'comm==nomatch_xyz', 0],
      ['other operation', `${me},operation==nomatch`, 0],
      ['other daddr', `${me},daddr==::1`, 0],
    ];
    let port = 0;
    const steps = cases.map(([id, filter]): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: id.replace(/ /g, '-'), filter })]);
    const traced = await traceAllWhile(steps, async () => {
      port = (await connection(t, '127.0.0.1')).port;
    });
    const counts = Object.fromEntries(cases.map(([id], i) => [id, traced[i].events.filter((e) => e.sport === port || e.dport === port).length]));
    assert.deepEqual(counts, Object.fromEntries(cases.map(([id, , n]) => [id, n])));
  });

  test('a workload cgroup: connections inside are seen, outside are not', async (t) => {
    const fixture = buildFixture(t, 'net_loop');
    const cg = freshCgroup(t, uniqueToken('cg'));
    let lines: number[][] = [];
    let outside = 0;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" tcp 2 6', 'sh', cg.dir, fixture]);
      assert.equal(r.code, 0);
      lines = r.stdout.trim().split('\n').map((l) => l.split(' ').map(Number));
      outside = (await connection(t, '::1')).port;
    });
    assert.equal(lines.length, 2);
    for (const [port, client] of lines) {
      const seen = events.filter((e) => (e.sport === client && e.dport === port) || (e.sport === port && e.dport === client));
      assert.deepEqual(seen.map((e) => e.operation).sort(), ['accept', 'close', 'close', 'connect'], JSON.stringify(seen));
      assert.ok(seen.every((e) => e.comm === 'net_loop' && e.cgroup_id === Number(cg.id) && e.saddr === '::1' && e.ipversion === 6));
    }
    assert.deepEqual(events.filter((e) => e.sport === outside || e.dport === outside), []);
  });
});
