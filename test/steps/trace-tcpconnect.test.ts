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

const def: GadgetDefinition = gadgets['trace/tcpconnect'];
const me = `pid==${process.pid}`;

function toPort(events: Event[], port: number): Event[] {
  return events.filter((e) => e.dport === port);
}

/** A connect from this process to `port`; the client's local port. */
async function connectTo(host: string, port: number): Promise<number> {
  const c = net.connect(port, host);
  await once(c, 'connect');
  const local = c.localPort!;
  c.destroy();
  return local;
}

describe('trace/tcpconnect', { skip: kernelSkip(def) }, () => {
  for (const { host, ipversion } of LOOPBACKS) {
    test(`a connect over ${host}: exact addresses and ports, latency > 0`, async (t) => {
      const { port } = await tcpServer(t, host);
      let client = 0;
      const { events } = await traceWhile(def, stepContext(t, { filter: me }), async () => {
        client = await connectTo(host, port);
      });
      const seen = toPort(events, port);
      assert.equal(seen.length, 1, JSON.stringify(events));
      const { timestamp, latency, ...rest } = seen[0];
      assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      assert.ok(typeof latency === 'number' && latency > 0, `latency ${latency}`);
      assert.deepEqual(rest, {
        pid: process.pid, tid: process.pid, uid: 0, gid: 0, comm: fs.readFileSync('/proc/self/comm', 'utf8').trim(),
        ipversion, saddr: host, daddr: host, sport: client, dport: port, ret: 0, err_name: '',
        mntns_id: mntnsOf(process.pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(process.pid))),
      });
    });

    test(`a refused connect over ${host}: ret -111, ECONNREFUSED, latency > 0`, async (t) => {
      const port = await freePort(host);
      const { events } = await traceWhile(def, stepContext(t, { filter: me }), async () => {
        await assert.rejects(connectTo(host, port), { code: 'ECONNREFUSED' });
      });
      const seen = toPort(events, port);
      assert.equal(seen.length, 1, JSON.stringify(events));
      assert.deepEqual([seen[0].ret, seen[0].err_name, seen[0].daddr, seen[0].ipversion], [-111, 'ECONNREFUSED', host, ipversion]);
      assert.ok((seen[0].latency as number) > 0);
    });
  }

  test('filters: matching ones see the connect, non-matching ones nothing', async (t) => {
    const { port } = await tcpServer(t, '127.0.0.1');
    const cases: [string, string, number][] = [
      ['pid', me, 1],
      ['dport', `${me},dport==${port}`, 1],
      ['latency', `${me},latency>0`, 1],
      ['other pid', 'pid==1', 0],
      ['other uid', 'uid==65534', 0],
      ['other dport', `${me},dport!=${port}`, 0],
      ['failed only', `${me},ret<0`, 0],
    ];
    const steps = cases.map(([id, filter]): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: id.replace(/ /g, '-'), filter })]);
    const traced = await traceAllWhile(steps, () => connectTo('127.0.0.1', port));
    const counts = Object.fromEntries(cases.map(([id], i) => [id, toPort(traced[i].events, port).length]));
    assert.deepEqual(counts, Object.fromEntries(cases.map(([id, , n]) => [id, n])));
  });

  test('a workload cgroup: connects inside are seen, outside are not', async (t) => {
    const fixture = buildFixture(t, 'net_loop');
    const cg = freshCgroup(t, uniqueToken('cg'));
    const { port: outside } = await tcpServer(t, '127.0.0.1');
    let lines: number[][] = [];
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" tcp 3', 'sh', cg.dir, fixture]);
      assert.equal(r.code, 0);
      lines = r.stdout.trim().split('\n').map((l) => l.split(' ').map(Number));
      await connectTo('127.0.0.1', outside);
    });
    assert.equal(lines.length, 3);
    const seen = toPort(events, lines[0][0]);
    assert.deepEqual(seen.map((e) => e.sport), lines.map(([, client]) => client));
    assert.ok(seen.every((e) => e.comm === 'net_loop' && e.cgroup_id === Number(cg.id) && e.ret === 0 && (e.latency as number) > 0));
    assert.deepEqual(toPort(events, outside), []);
  });
});
