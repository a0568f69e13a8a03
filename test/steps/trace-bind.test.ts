import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { buildFixture } from '../helpers/fixtures.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { freePort, listenFails, LOOPBACKS, tcpServer, udpSocket } from '../helpers/net.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/bind'];
const me = `pid==${process.pid}`;

function atPort(events: Event[], port: number): Event[] {
  return events.filter((e) => e.port === port);
}

/** The fields every bind by this process carries. */
function mine(): Event {
  return {
    pid: process.pid, tid: process.pid, uid: 0, gid: 0, comm: fs.readFileSync('/proc/self/comm', 'utf8').trim(),
    bound_dev_if: 0, mntns_id: mntnsOf(process.pid), cgroup_id: Number(cgroupIdOf(cgroupDirOf(process.pid))),
  };
}

describe('trace/bind', { skip: kernelSkip(def) }, () => {
  for (const { host, ipversion, udp } of LOOPBACKS) {
    test(`TCP and UDP binds on ${host}: exact address, port, protocol and options`, async (t) => {
      let tcp!: Awaited<ReturnType<typeof tcpServer>>;
      let dgram!: Awaited<ReturnType<typeof udpSocket>>;
      const { events } = await traceWhile(def, stepContext(t, { filter: me }), async () => {
        tcp = await tcpServer(t, host);
        dgram = await udpSocket(t, udp, host);
      });
      const strip = (e: Event) => {
        const { timestamp, ...rest } = e;
        assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
        return rest;
      };
      // libuv sets SO_REUSEADDR on every TCP server socket, never on UDP unless asked
      assert.deepEqual(atPort(events, tcp.port).map(strip), [
        { ...mine(), proto: 'TCP', addr: host, port: tcp.port, ipversion, ret: 0, err_name: '', opts: 'SO_REUSEADDR' },
      ]);
      assert.deepEqual(atPort(events, dgram.port).map(strip), [
        { ...mine(), proto: 'UDP', addr: host, port: dgram.port, ipversion, ret: 0, err_name: '', opts: '' },
      ]);
    });
  }

  test('a bind to a taken port: ret -98, EADDRINUSE, the requested port', async (t) => {
    const { port } = await tcpServer(t, '127.0.0.1');
    let err!: NodeJS.ErrnoException;
    const { events } = await traceWhile(def, stepContext(t, { filter: me }), async () => {
      err = await listenFails('127.0.0.1', port);
    });
    assert.equal(err.code, 'EADDRINUSE');
    const seen = atPort(events, port);
    assert.equal(seen.length, 1, JSON.stringify(events));
    assert.deepEqual([seen[0].ret, seen[0].err_name, seen[0].addr, seen[0].proto], [-98, 'EADDRINUSE', '127.0.0.1', 'TCP']);
  });

  test('filters and params: matching ones see the binds, non-matching ones nothing', async (t) => {
    const port = await freePort('127.0.0.1');
    const other = port === 65535 ? port - 1 : port + 1;
    const cases: [string, { filter?: string; params?: Record<string, unknown> }, number][] = [
      ['pid', { filter: me }, 2],
      ['ports', { filter: me, params: { ports: [other, port] } }, 2],
      ['err_name', { filter: `${me},err_name==EADDRINUSE` }, 1],
      ['ignore_errors', { filter: me, params: { ignore_errors: true } }, 1],
      ['other ports', { filter: me, params: { ports: [other] } }, 0],
      ['other pid', { filter: 'pid==1' }, 0],
      ['other comm', { filter: 'comm==nomatch_xyz' }, 0],
      ['other proto', { filter: `${me},proto==UDP` }, 0],
      ['other addr', { filter: `${me},addr==::1` }, 0],
    ];
    const steps = cases.map(([id, opts]): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: id.replace(/ /g, '-'), ...opts })]);
    const traced = await traceAllWhile(steps, async () => {
      await tcpServer(t, '127.0.0.1', port); // succeeds
      assert.equal((await listenFails('127.0.0.1', port)).code, 'EADDRINUSE');
    });
    const counts = Object.fromEntries(cases.map(([id], i) => [id, atPort(traced[i].events, port).length]));
    assert.deepEqual(counts, Object.fromEntries(cases.map(([id, , n]) => [id, n])));
  });

  test('a workload cgroup: binds inside are seen, binds outside are not', async (t) => {
    const fixture = buildFixture(t, 'net_loop');
    const cg = freshCgroup(t, uniqueToken('cg'));
    let inside: number[] = [];
    let outside = 0;
    const { events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" bind 3', 'sh', cg.dir, fixture]);
      assert.equal(r.code, 0);
      inside = r.stdout.trim().split('\n').map(Number);
      outside = (await tcpServer(t, '127.0.0.1')).port;
    });
    assert.equal(inside.length, 3);
    for (const port of inside) {
      const seen = atPort(events, port);
      assert.equal(seen.length, 1, `port ${port}: ${JSON.stringify(events)}`);
      assert.deepEqual([seen[0].comm, seen[0].addr, seen[0].proto, seen[0].cgroup_id], ['net_loop', '127.0.0.1', 'TCP', Number(cg.id)]);
    }
    assert.deepEqual(atPort(events, outside), []);
  });
});
