import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { REPO, kernelSkip } from '../helpers/kernel.ts';
import { freshCgroup, mntnsOf, run } from '../helpers/proc.ts';
import { stepContext, traceAllWhile, traceWhile, uniqueToken } from '../helpers/session.ts';
import { selfSignedCert, startTlsServer, tlsHello } from '../helpers/tls.ts';

const def: GadgetDefinition = gadgets['trace/sni'];
const ownNetns = Number(fs.statSync('/proc/self/ns/net').ino);
const helloFixture = path.join(REPO, 'test/fixtures/tls_hello.ts');

describe('trace/sni', { skip: kernelSkip(def) }, () => {
  test('node-wide: the server name of ClientHellos over 127.0.0.1 and ::1', async (t) => {
    const pair = selfSignedCert(t);
    const [v4, v6] = [await startTlsServer(t, pair, '127.0.0.1'), await startTlsServer(t, pair, '::1')];
    const names = [`sni-${uniqueToken()}.example`, `sni-${uniqueToken()}.example`];
    const ports: number[] = [];
    const { outcome, events } = await traceWhile(def, stepContext(t, { filter: `name~^sni-gadget-test-${process.pid}-` }), async () => {
      ports.push(await tlsHello(v4, names[0]));
      ports.push(await tlsHello(v6, names[1]));
    });
    assert.equal(outcome.events, events.length);
    const mine = events.filter((e) => names.includes(e.name as string));
    assert.equal(mine.length, 2, JSON.stringify(events));
    const strip = ({ timestamp, ...rest }: Record<string, unknown>) => {
      assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      return rest;
    };
    const common = { pid: 0, comm: '', netns: ownNetns, mntns_id: 0, cgroup_id: 0 };
    assert.deepEqual(mine.map(strip), [
      { ...common, saddr: '127.0.0.1', daddr: '127.0.0.1', sport: ports[0], dport: v4.port, name: names[0] },
      { ...common, saddr: '::1', daddr: '::1', sport: ports[1], dport: v6.port, name: names[1] },
    ]);
  });

  test('filters and params.ports: matching ones see the ClientHello, non-matching ones see nothing', async (t) => {
    const server = await startTlsServer(t, selfSignedCert(t));
    const name = `sni-${uniqueToken()}.example`;
    const cases: { filter: string; params?: Record<string, unknown>; sees: number }[] = [
      { filter: `name==${name}`, sees: 1 },
      { filter: `name==${name}`, params: { ports: [1, server.port] }, sees: 1 },
      { filter: `name~^sni-,dport==${server.port}`, sees: 1 },
      { filter: `name==${name}`, params: { ports: [server.port === 65535 ? 1 : server.port + 1] }, sees: 0 },
      { filter: `name==other-${name}`, sees: 0 },
      { filter: `name==${name},dport==1`, sees: 0 },
    ];
    const steps = cases.map((c, i): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: `f${i}`, filter: c.filter, params: c.params })]);
    const traced = await traceAllWhile(steps, () => tlsHello(server, name));
    assert.deepEqual(
      traced.map((r) => r.events.filter((e) => e.name === name).length),
      cases.map((c) => c.sees),
    );
  });

  test('a workload cgroup: its ClientHello is seen with pid and comm; one from outside is not', async (t) => {
    const server = await startTlsServer(t, selfSignedCert(t));
    const cg = freshCgroup(t, uniqueToken('cg'));
    const names = { inside: `sni-in-${uniqueToken()}.example`, outside: `sni-out-${uniqueToken()}.example` };
    let child!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { filter: 'name~^sni-', cgroup: { id: cg.id, level: cg.level } }), async () => {
      child = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" --import tsx "$3" 127.0.0.1 "$4" "$5" 2', 'sh', cg.dir, process.execPath, helloFixture, String(server.port), names.inside], { cwd: REPO });
      assert.equal(child.stdout, '2\n');
      await tlsHello(server, names.outside);
    });
    assert.deepEqual(events.filter((e) => e.name === names.outside), []);
    const mine = events.filter((e) => e.name === names.inside);
    assert.equal(mine.length, 2, JSON.stringify(events));
    for (const e of mine) {
      assert.deepEqual([e.pid, e.comm, e.cgroup_id, e.mntns_id, e.netns, e.daddr, e.dport], [child.pid, 'node', Number(cg.id), mntnsOf(process.pid), ownNetns, '127.0.0.1', server.port]);
    }
  });
});
