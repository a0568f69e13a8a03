/**
 * advise/egress learns the allow-list a run needed; the next run enforces it
 * (egress.allow) or holds to it as a baseline (egress.baseline). Real kernel,
 * in a network namespace the test makes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { clientRun, egressNetwork, outcomes, RESOLVER, runEgress } from './helpers.ts';

const ACTIONS = [
  `resolve:${RESOLVER}:two.test:A`, 'answers:8080',
  `resolve:${RESOLVER}:v6.test:AAAA`, 'answers:8080',
  'tcp:10.99.0.7:8080', 'udp:10.99.0.6:8080', 'tcp:127.0.0.1:9',
];
const NEEDED = ['10.99.0.1:53/udp', '10.99.0.6:8080/udp', '10.99.0.7:8080/tcp', 'two.test:8080/tcp', 'v6.test:8080/tcp'];

describe('advise/egress → egress', { skip: kernelSkip(gadgets['advise/egress']) }, () => {
  test('learn the list, enforce it, then hold a run to it as a baseline', async (t) => {
    const ns = await egressNetwork(t, 'egv');
    const learnt = await runEgress(t, (out) => `name: egress-learn
run: ${JSON.stringify(clientRun(ns, out, ACTIONS))}
steps:
  - id: learn
    gadget: advise/egress
    transform: '[allow]'
    outputs: [egress.json]
`);
    assert.equal(learnt.summary.status, 'passed', learnt.summary.reasons.join('\n'));
    const list = JSON.parse(fs.readFileSync(path.join(learnt.out, 'run', 'egress.json'), 'utf8'));
    assert.deepEqual(list, NEEDED, 'names for what a DNS answer named, addresses for the rest, loopback left out, sorted');

    // the list as the next run's allow: nothing refused
    const enforced = await runEgress(t, (out) => `name: egress-enforce
run: ${JSON.stringify(clientRun(ns, out, ACTIONS))}
egress:
  mode: block
  allow: ${JSON.stringify(list)}
`);
    assert.deepEqual(Object.values(outcomes(enforced.client)).filter((o) => o !== 'ok'), ['ECONNREFUSED'], JSON.stringify(enforced.client));
    assert.equal(enforced.summary.status, 'passed', enforced.summary.reasons.join('\n'));

    // the list as a baseline: a destination not in it fails the run, and is named
    const held = await runEgress(t, (out) => {
      fs.writeFileSync(path.join(out, 'egress.json'), JSON.stringify(list));
      return `name: egress-baseline
run: ${JSON.stringify(clientRun(ns, out, [...ACTIONS, 'tcp:10.99.0.8:8080']))}
egress:
  mode: audit
  baseline: egress.json
`;
    });
    assert.equal(outcomes(held.client)['tcp 10.99.0.8:8080'], 'ok', 'audit lets it through');
    assert.equal(held.summary.status, 'failed');
    const step = held.summary.steps.find((s) => s.id === 'egress')!;
    assert.deepEqual(step.baseline?.added, ['10.99.0.8:8080/tcp']);
    assert.ok(held.summary.reasons.some((r) => r.includes('10.99.0.8:8080/tcp')), held.summary.reasons.join('\n'));
    const reported = held.events.filter((e) => e.verdict === 'reported').map((e) => e.destination);
    assert.deepEqual(reported, ['10.99.0.8:8080/tcp']);
  });
});
