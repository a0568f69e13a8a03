/** Kubernetes names from names users chose: whatever the input, the API server's rules hold. */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { Api } from '../../src/k8s/client.ts';
import { runOnCluster } from '../../src/k8s/cluster-run.ts';
import type { GadgetRun } from '../../src/k8s/crd.ts';
import { resultObject } from '../../src/k8s/results.ts';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { dnsLabel, dnsSubdomain } from '../../src/util/k8s-names.ts';

// apimachinery's IsDNS1123Label, IsDNS1123Subdomain and IsValidLabelValue
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const AWKWARD = ['Deployment/web', 'My Recipe', 'a.-b', '-a.b-', 'a..b', 'x_-y', 'web--x', '..', '', '___', 'é', `${'a'.repeat(39)} b`, `${'a'.repeat(300)}.b`, 'a.'.repeat(200)];

test('dnsLabel: a DNS-1123 label within its bound for any input, the fallback when nothing is left', () => {
  for (const s of AWKWARD) {
    for (const max of [40, 63]) {
      const l = dnsLabel(s, 'run', max);
      assert.match(l, LABEL, JSON.stringify(s));
      assert.ok(l.length <= max, `${JSON.stringify(s)} → ${l.length} characters`);
    }
  }
  assert.equal(dnsLabel('My Recipe', 'run'), 'my-recipe');
  assert.equal(dnsLabel('___', 'run'), 'run');
  // a cut at 40 that falls right after a separator must not end the label with it
  assert.equal(dnsLabel(`${'a'.repeat(39)} b`, 'run', 40), 'a'.repeat(39));
});

test('dnsSubdomain: every dot-separated part starts and ends with a letter or digit, 253 characters at most', () => {
  for (const s of AWKWARD) {
    const d = dnsSubdomain(s, 'fallback');
    assert.match(d, SUBDOMAIN, JSON.stringify(s));
    assert.ok(d.length <= 253);
  }
  assert.equal(dnsSubdomain('a.-b', 'x'), 'a.b');
  assert.equal(dnsSubdomain('Deployment/web', 'x'), 'deployment-web');
  assert.equal(dnsSubdomain('web--x.example', 'x'), 'web--x.example');
  assert.equal(dnsSubdomain('..', 'x'), 'x');
});

test("a cluster run's GadgetRun has a valid name and recipe label even when the recipe name's 40th character is a separator", async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const api = new Api(kc);
  const created: GadgetRun[] = [];
  // the create is where the API server would refuse a bad name or label: stop there
  api.custom.createNamespacedCustomObject = (async (p: { body: GadgetRun }) => {
    created.push(p.body);
    throw new Error('stop after create');
  }) as never;
  for (const name of [`${'a'.repeat(39)}_b`, `${'a'.repeat(39)}.b`, 'CI_exec.Audit', 'a'.repeat(64)]) {
    const text = `name: ${JSON.stringify(name)}\nduration: 1s\nsteps: [{id: e, gadget: trace/exec}]\n`;
    const loaded = parseRecipe(text, 'r.yaml');
    await assert.rejects(runOnCluster(loaded, { outDir: path.join(os.tmpdir(), 'unused'), text, nodes: ['n1'], log: () => {}, api }), /stop after create/);
    const run = created.at(-1)!;
    assert.match(run.metadata.name, SUBDOMAIN, name);
    const label = run.metadata.labels!['gadget-run.dev/recipe'];
    assert.ok(label.length <= 63 && LABEL_VALUE.test(label), `label ${JSON.stringify(label)} of ${JSON.stringify(name)}`);
    // the node's result ConfigMaps carry the run's name: they stay valid too
    const cm = resultObject(run, 'node-1.example', 0, 1, undefined);
    assert.match(cm.metadata!.name!, SUBDOMAIN);
  }
});
