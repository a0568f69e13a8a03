import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition, StepContext } from '../../src/steps/types.ts';
import { ANSWER_A, ANSWER_AAAA, NXDOMAIN, TYPE_A, TYPE_AAAA, query, startDnsServer } from '../helpers/dns.ts';
import { REPO, buildCFixture, kernelSkip } from '../helpers/kernel.ts';
import { backgroundIn, backgroundReady, freshNetns } from '../helpers/netns.ts';
import { freshCgroup, mntnsOf, run, stopChild } from '../helpers/proc.ts';
import { stepContext, traceAllWhile, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/dns'];
const ownNetns = Number(fs.statSync('/proc/self/ns/net').ino);

/** Names carry the test's token, so neighbours' DNS traffic never matches. */
const named = (events: Event[], name: string) => events.filter((e) => e.name === name);

/** The fields that depend on the run (time, ephemeral port, latency) checked apart, the rest exactly. */
function exact(e: Event): Event {
  const { timestamp, latency, ...rest } = e;
  assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  assert.equal(typeof latency, 'number');
  return rest;
}

describe('trace/dns', { skip: kernelSkip(def) }, () => {
  test('node-wide, this network namespace: A and AAAA over 127.0.0.1 and ::1, an NXDOMAIN', async (t) => {
    const token = uniqueToken('dns');
    const [v4, v6] = [await startDnsServer('127.0.0.1'), await startDnsServer('::1')];
    t.after(() => Promise.all([v4.close(), v6.close()]));
    const names = { a: `a.${token}.example`, aaaa: `aaaa.${token}.example`, nx: `nx-${token}.example` };
    const { outcome, events } = await traceWhile(def, stepContext(t, { filter: `name~${token}` }), async () => {
      await query(v4, 0x1234, names.a, TYPE_A);
      await query(v6, 0x2345, names.aaaa, TYPE_AAAA);
      await query(v4, 0x3456, names.nx, TYPE_A);
    });
    assert.equal(outcome.events, events.length);
    assert.equal(events.length, 6, JSON.stringify(events));
    const common = { pid: 0, comm: '', netns: ownNetns, mntns_id: 0, cgroup_id: 0 };
    const pair = (name: string, id: number, qtype: number, addr: string, rcode: number, answers: string[]) => {
      const [q, r] = named(events, name);
      assert.ok(q && r, `query and response for ${name}: ${JSON.stringify(events)}`);
      const client = q.sport as number;
      assert.ok(client > 0 && client !== 53);
      const qtypeName = qtype === TYPE_A ? 'A' : 'AAAA';
      assert.deepEqual(exact(q), {
        ...common, saddr: addr, daddr: addr, sport: client, dport: 53, id, qr: 'Q', qtype, qtype_name: qtypeName, name,
        rcode: 0, rcode_name: 'NOERROR', answers: [],
      });
      assert.deepEqual(exact(r), {
        ...common, saddr: addr, daddr: addr, sport: 53, dport: client, id, qr: 'R', qtype, qtype_name: qtypeName, name,
        rcode, rcode_name: rcode ? 'NXDOMAIN' : 'NOERROR', answers,
      });
      assert.equal(q.latency, 0);
      assert.ok((r.latency as number) > 0, `latency of ${name}: ${r.latency}`);
    };
    pair(names.a, 0x1234, TYPE_A, '127.0.0.1', 0, [ANSWER_A]);
    pair(names.aaaa, 0x2345, TYPE_AAAA, '::1', 0, [ANSWER_AAAA]);
    pair(names.nx, 0x3456, TYPE_A, '127.0.0.1', NXDOMAIN, []);
  });

  test('filters: matching ones see the response, non-matching ones see nothing', async (t) => {
    const token = uniqueToken('dnsf');
    const server = await startDnsServer('127.0.0.1');
    t.after(() => server.close());
    const name = `f.${token}.example`;
    const filters = [
      `name==${name}`, `name==${name},qr==R,rcode_name==NOERROR`, `name==${name},qtype_name==A,latency>0`,
      `name==${name},qtype==A,rcode==NOERROR,qr==Q`,
      `name==other-${token}.example`, `name==${name},qtype_name==MX`, `name==${name},rcode==NXDOMAIN`, `name==${name},qtype==AAAA`, `name==${name},pid==1`,
    ];
    const steps = filters.map((filter, i): [GadgetDefinition, StepContext] => [def, stepContext(t, { id: `f${i}`, filter })]);
    const traced = await traceAllWhile(steps, () => query(server, 7, name, TYPE_A));
    const counts = Object.fromEntries(filters.map((f, i) => [f, traced[i].events.length]));
    assert.deepEqual(counts, Object.fromEntries(filters.map((f, i) => [f, [2, 1, 1, 1][i] ?? 0])));
  });

  test('params.netns: a namespace the test made is watched, and only it', async (t) => {
    const token = uniqueToken('dnsns');
    const ns = freshNetns(t, token);
    const client = buildCFixture(t, 'dns_query');
    await backgroundIn(t, ns, process.execPath, ['--import', 'tsx', path.join(REPO, 'test/fixtures/dns_server.ts'), '127.0.0.1']);
    const name = `ns.${token}.example`;
    const [inside, here] = await traceAllWhile(
      [[def, stepContext(t, { id: 'inside', filter: `name==${name}`, params: { netns: ns.path } })], [def, stepContext(t, { id: 'here', filter: `name==${name}` })]],
      async () => {
        const r = await run('ip', ['netns', 'exec', ns.name, client, '127.0.0.1', '53', name, String(TYPE_A), '3', '100']);
        assert.equal(r.code, 0, 'the three queries were answered');
      },
    );
    assert.deepEqual(inside.events.map((e) => [e.qr, e.id, e.netns, e.answers]), [100, 101, 102].flatMap((id) => [
      ['Q', id, Number(fs.statSync(ns.path).ino), []], ['R', id, Number(fs.statSync(ns.path).ino), [ANSWER_A]],
    ]));
    assert.deepEqual(here.events, [], 'our own namespace saw none of it');
  });

  test('params.netns that is not a network namespace: the error says what to give', async (t) => {
    await assert.rejects(traceWhile(def, stepContext(t, { params: { netns: '/proc/self/ns/mnt' } }), () => {}), /not a network namespace.*\/proc\/PID\/ns\/net/);
    await assert.rejects(traceWhile(def, stepContext(t, { params: { netns: '/nonexistent/netns' } }), () => {}), /\/nonexistent\/netns.*\/var\/run\/netns\/NAME/);
  });

  test('a workload cgroup: its queries are seen with pid and comm, its answers too; a client outside is not', async (t) => {
    const token = uniqueToken('dnscg');
    const server = await startDnsServer('127.0.0.1');
    t.after(() => server.close());
    const client = buildCFixture(t, 'dns_query');
    const cg = freshCgroup(t, uniqueToken('cg'));
    const names = { inside: `in.${token}.example`, outside: `out.${token}.example` };
    let child!: Awaited<ReturnType<typeof run>>;
    const { events } = await traceWhile(def, stepContext(t, { filter: `name~${token}`, cgroup: { id: cg.id, level: cg.level } }), async () => {
      child = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" 127.0.0.1 53 "$3" 1 1 77', 'sh', cg.dir, client, names.inside]);
      assert.equal(child.code, 0);
      const outside = await run(client, ['127.0.0.1', '53', names.outside, '1', '1', '78']);
      assert.equal(outside.code, 0);
      await query(server, 79, names.outside, TYPE_A); // this process, outside too
    });
    assert.deepEqual(named(events, names.outside), []);
    const [q, r] = named(events, names.inside);
    assert.equal(named(events, names.inside).length, 2, JSON.stringify(events));
    // egress runs in the sending task: pid, comm, cgroup and mount namespace are the client's
    assert.deepEqual([q.qr, q.id, q.pid, q.comm, q.cgroup_id, q.mntns_id, q.netns], ['Q', 77, child.pid, 'dns_query', Number(cg.id), mntnsOf(process.pid), ownNetns]);
    // ingress runs in softirq: no task to name
    assert.deepEqual([r.qr, r.id, r.pid, r.comm, r.cgroup_id, r.answers, r.sport, r.dport], ['R', 77, 0, '', 0, [ANSWER_A], 53, q.sport]);
    assert.ok((r.latency as number) > 0);
  });

  test('a workload with its own loopback server: each packet once, at egress, named with its sender', async (t) => {
    const token = uniqueToken('dnsboth');
    const client = buildCFixture(t, 'dns_query');
    const cg = freshCgroup(t, uniqueToken('cg'));
    const server = await backgroundReady(t, '/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" --import tsx "$3" 127.0.0.1', 'sh', cg.dir, process.execPath, path.join(REPO, 'test/fixtures/dns_server.ts')]);
    const name = `both.${token}.example`;
    let child!: Awaited<ReturnType<typeof run>>;
    let events: Event[];
    try {
      ({ events } = await traceWhile(def, stepContext(t, { filter: `name==${name}`, cgroup: { id: cg.id, level: cg.level } }), async () => {
        child = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" 127.0.0.1 53 "$3" 28 2 500', 'sh', cg.dir, client, name]);
        assert.equal(child.code, 0);
      }));
    } finally {
      // gone before the cgroup is removed: after-hooks run in the order they were added
      await stopChild(server);
    }
    assert.deepEqual(events.map((e) => [e.qr, e.id, e.pid, e.comm, e.answers]), [
      ['Q', 500, child.pid, 'dns_query', []], ['R', 500, server.pid, 'node', [ANSWER_AAAA]],
      ['Q', 501, child.pid, 'dns_query', []], ['R', 501, server.pid, 'node', [ANSWER_AAAA]],
    ]);
    assert.ok(events.filter((e) => e.qr === 'R').every((e) => (e.latency as number) > 0));
  });
});
