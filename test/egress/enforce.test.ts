/**
 * audit/egress against the real kernel: the recipe's `egress:` block on a
 * workload in a network namespace the test makes, with its own resolver.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { clientRun, egressNetwork, outcomes, RESOLVER, runEgress } from './helpers.ts';

const def = gadgets['audit/egress'];

const ACTIONS = [
  `resolve:${RESOLVER}:allowed.test:A`, 'answers:8080',
  `resolve:${RESOLVER}:two.test:A`, 'answers:8080',
  `resolve:${RESOLVER}:a.wild.test:A`, 'answers:8080',
  `resolve:${RESOLVER}:v6.test:AAAA`, 'answers:8080',
  `resolve:${RESOLVER}:denied.test:A`, 'answers:8080',
  'tcp:10.99.0.7:8080', 'tcp:10.99.0.6:8080', 'tcp:[fd00:99::1]:8080', 'tcp:[fd00:99::3]:8080',
  'udp:10.99.0.7:8080', 'udp:10.99.0.6:8080', 'tcp:127.0.0.1:9',
];
const ALLOW = `["allowed.test", "two.test:8080/tcp", "*.wild.test", "v6.test", "10.99.0.7/32", "[fd00:99::1]:8080/tcp", "${RESOLVER}:53/udp"]`;

/** The attempts no entry allows: target → the name its address came from. */
const NOT_ALLOWED = {
  'tcp 10.99.0.9:8080': 'denied.test',
  'tcp 10.99.0.6:8080': '',
  'tcp fd00:99::3:8080': '',
  'udp 10.99.0.6:8080': '',
};

function eventsByTarget(events: Record<string, unknown>[]) {
  return Object.fromEntries(events.map((e) => [`${e.proto} ${e.daddr}:${e.dport}`, e]));
}

describe('egress allow-lists in the kernel', { skip: kernelSkip(def) }, () => {
  test('block: names (one and two addresses, a wildcard, IPv6) and CIDRs pass, the rest gets EPERM and fails the run with evidence', async (t) => {
    const ns = await egressNetwork(t, 'egb');
    const { summary, client, events } = await runEgress(t, (out) => `name: egress-block
run: ${JSON.stringify(clientRun(ns, out, ACTIONS))}
egress:
  mode: block
  allow: ${ALLOW}
`);
    const got = outcomes(client);
    assert.deepEqual(got, {
      'tcp 10.99.0.2:8080': 'ok', 'tcp 10.99.0.3:8080': 'ok', 'tcp 10.99.0.5:8080': 'ok', 'tcp 10.99.0.8:8080': 'ok',
      'tcp fd00:99::2:8080': 'ok', 'tcp 10.99.0.9:8080': 'EPERM', 'tcp 10.99.0.7:8080': 'ok', 'tcp 10.99.0.6:8080': 'EPERM',
      'tcp [fd00:99::1]:8080': 'ok', 'tcp [fd00:99::3]:8080': 'EPERM', 'udp 10.99.0.7:8080': 'ok', 'udp 10.99.0.6:8080': 'EPERM',
      'tcp 127.0.0.1:9': 'ECONNREFUSED',
    }, JSON.stringify(client));
    const byTarget = eventsByTarget(events);
    assert.deepEqual(Object.keys(byTarget).sort(), Object.keys(NOT_ALLOWED).sort(), JSON.stringify(events));
    for (const [target, name] of Object.entries(NOT_ALLOWED)) {
      const e = byTarget[target];
      assert.equal(e.verdict, 'refused');
      assert.equal(e.name, name, target);
      assert.equal(e.rule, -1);
      assert.equal(e.comm, 'node');
      assert.ok((e.pid as number) > 0);
      assert.equal(e.hook, target.startsWith('udp') ? 'sendmsg' : 'connect');
    }
    assert.equal(byTarget['tcp 10.99.0.9:8080'].destination, 'denied.test:8080/tcp');
    assert.equal(byTarget['tcp fd00:99::3:8080'].destination, '[fd00:99::3]:8080/tcp');
    assert.equal(summary.status, 'failed');
    const step = summary.steps.find((s) => s.id === 'egress')!;
    assert.equal(step.status, 'ok');
    assert.equal(step.events, 4);
    assert.equal(step.lost, 0);
    assert.equal(step.egress?.mode, 'block');
    assert.ok(step.egress?.allow.includes('127.0.0.0/8') && step.egress.allow.includes('::1/128'), 'loopback is spelled out in the summary');
    const a = summary.assertions.find((x) => x.name === 'egress: nothing refused')!;
    assert.equal(a.status, 'failed');
    assert.equal(a.evidence?.total, 4);
    assert.ok(summary.reasons.some((r) => r.includes('egress: nothing refused')), summary.reasons.join('\n'));
  });

  test('audit: the same attempts all go through, the ones not allowed are reported, the run passes', async (t) => {
    const ns = await egressNetwork(t, 'ega');
    const { summary, client, events } = await runEgress(t, (out) => `name: egress-audit
run: ${JSON.stringify(clientRun(ns, out, ACTIONS))}
egress:
  mode: audit
  allow: ${ALLOW}
`);
    const got = outcomes(client);
    for (const [k, v] of Object.entries(got)) assert.equal(v, k === 'tcp 127.0.0.1:9' ? 'ECONNREFUSED' : 'ok', `${k}: ${v}`);
    const byTarget = eventsByTarget(events);
    assert.deepEqual(Object.keys(byTarget).sort(), Object.keys(NOT_ALLOWED).sort(), JSON.stringify(events));
    for (const e of events) assert.equal(e.verdict, 'reported');
    assert.equal(summary.status, 'passed', summary.reasons.join('\n'));
  });

  test('allow_loopback: false refuses loopback too, and the summary says so', async (t) => {
    const ns = await egressNetwork(t, 'egl');
    const { summary, client, events } = await runEgress(t, (out) => `name: egress-loopback
run: ${JSON.stringify(clientRun(ns, out, ['tcp:127.0.0.1:9', 'tcp:[::1]:9']))}
egress:
  mode: block
  allow_loopback: false
  allow_resolver: false
`);
    assert.deepEqual(outcomes(client), { 'tcp 127.0.0.1:9': 'EPERM', 'tcp [::1]:9': 'EPERM' });
    assert.equal(events.length, 2);
    const step = summary.steps.find((s) => s.id === 'egress')!;
    assert.deepEqual(step.egress, { mode: 'block', allow: [], allow_loopback: false, allow_resolver: false });
    assert.equal(summary.status, 'failed');
  });
});
