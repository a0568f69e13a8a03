/**
 * runCluster() from the library API, on the test cluster (test/k8s/cluster.ts): the same run as
 * `run --cluster` (the CLI is this call plus the terminal), and the merged events exported to a
 * collector-shaped receiver on loopback, each node's with its own resource (k8s.node.name).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runCluster } from '../../src/api/index.ts';
import { clusterSuite, KUBECONFIG, kubectl, nodePod, NODE, skipK8s, startPods } from './cluster.ts';
import { assertValidSummary } from '../runner/summary-schema.ts';

// a comm of its own (at most 15 characters): only this test's execs match the step's filter
const COMM = `grapi${process.pid % 100_000}`;

const suite = clusterSuite({
  deploy: true,
  cleanup: async () => void (await kubectl(['-n', 'default', 'delete', 'pod', '-l', `grapi=${process.pid}`, '--grace-period=0', '--wait=false'])),
});

interface Got {
  resource: Record<string, unknown>;
  attributes: Record<string, unknown>;
}

/** An OTLP/HTTP JSON logs receiver on loopback: each record with its resource's attributes (string values). */
async function receiver() {
  const got: Got[] = [];
  const flat = (kvs: { key: string; value: Record<string, unknown> }[]) => Object.fromEntries(kvs.map((kv) => [kv.key, Object.values(kv.value)[0]]));
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rl of body.resourceLogs) {
        for (const sl of rl.scopeLogs) for (const r of sl.logRecords) got.push({ resource: flat(rl.resource.attributes), attributes: flat(r.attributes) });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('runCluster(): the merged verdict with each node\'s answer, and its events exported with the node as their resource', { skip: skipK8s, timeout: 300_000 }, async (t) => {
  const r = await receiver();
  t.after(r.close);
  const kubeconfig = process.env.KUBECONFIG;
  process.env.KUBECONFIG = KUBECONFIG;
  t.after(() => (kubeconfig === undefined ? delete process.env.KUBECONFIG : (process.env.KUBECONFIG = kubeconfig)));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-api-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, COMM);
  fs.copyFileSync('/bin/true', bin);
  fs.chmodSync(bin, 0o755);
  // execs on the node (hostPID agents see them) for as long as the run may capture
  const loop = spawn('/bin/sh', ['-c', `while :; do ${bin}; sleep 0.2; done`], { stdio: 'ignore' });
  t.after(() => loop.kill('SIGKILL'));
  const result = await runCluster({
    name: 'k8s-api',
    steps: [{ id: 'execs', gadget: 'trace/exec', filter: `comm==${COMM}`, duration: '5s' }],
    assertions: [{ name: 'the loop was seen', expr: '$count(steps.execs) > 0' }],
    export: { otlp: { endpoint: r.url } },
  }, { out: path.join(dir, 'out'), cluster: { nodes: [NODE] }, log: () => {} });
  assert.equal(result.status, 'passed', result.reasons.join('; '));
  assert.deepEqual(result.cluster.nodes.map((n) => [n.node, n.phase]), [[NODE, 'Succeeded']]);
  const summary = JSON.parse(fs.readFileSync(result.paths.summary, 'utf8'));
  assertValidSummary(summary);
  const execs = summary.steps.find((s: { id: string }) => s.id === 'execs');
  assert.ok(execs.events > 0);
  assert.equal(summary.export.otlp.sent, execs.events, JSON.stringify(summary.export));
  assert.equal(r.got.length, execs.events);
  for (const g of r.got) {
    assert.equal(g.attributes.comm, COMM);
    assert.equal(g.resource['k8s.node.name'], NODE);
    assert.equal(g.resource['host.name'], NODE);
    assert.equal(g.resource['gadget_run.cluster_run'], result.cluster.run);
  }
  // report.md keeps the nodes' table once the export's figures are written into it
  const report = fs.readFileSync(result.paths.report, 'utf8');
  assert.match(report, /## Nodes/);
});

test('for_each: pod on a cluster node: one instance per pod a trigger event came from, keyed namespace/pod, scoped to its container', { skip: skipK8s, timeout: 400_000 }, async (t) => {
  const mark = `grapimark${process.pid}`;
  const names = [`grapi-a-${process.pid}`, `grapi-b-${process.pid}`];
  // each pod starts a child with the mark as its argument every second (node is what the image has)
  const script = `const {spawn}=require('child_process');setInterval(()=>spawn('/usr/bin/node',['-e','0','${mark}'],{stdio:'ignore'}),1000);`;
  await startPods(names.map((n) => nodePod(suite.cluster.image, n, 'default', { grapi: String(process.pid) }, script)), 'default', `grapi=${process.pid}`);
  const kubeconfig = process.env.KUBECONFIG;
  process.env.KUBECONFIG = KUBECONFIG;
  t.after(() => (kubeconfig === undefined ? delete process.env.KUBECONFIG : (process.env.KUBECONFIG = kubeconfig)));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-api-pods-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const result = await runCluster({
    name: 'k8s-for-each-pod',
    steps: [
      { id: 'trig', gadget: 'trace/exec', filter: `args~${mark}`, duration: '15s' },
      { id: 'each', gadget: 'trace/exec', start_on: { step: 'trig' }, for_each: 'pod', scope: 'trigger', duration: '8s' },
    ],
  }, { out: path.join(dir, 'out'), cluster: { nodes: [NODE] }, log: () => {} });
  assert.equal(result.status, 'passed', result.reasons.join('; '));
  const each = result.steps.find((s) => s.id === 'each')!;
  const instances = each.instances ?? [];
  assert.deepEqual(instances.map((i) => i.key).sort(), names.map((n) => `default/${n}`).sort(), JSON.stringify(each));
  const raw = fs.readFileSync(path.join(result.paths.raw, 'each.ndjson'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  for (const i of instances) {
    assert.equal(i.node, NODE, 'the merge names the node that ran it');
    assert.equal(i.triggered_by.fields.namespace, 'default');
    assert.equal(`default/${i.triggered_by.fields.pod}`, i.key);
    assert.ok(i.events > 0, `the pod's own execs after its trigger: ${JSON.stringify(i)}`);
    // scoped to the trigger's container: every event it kept came from that cgroup
    const mine = raw.filter((e) => e.cgroup_id === i.triggered_by.fields.cgroup_id);
    assert.equal(mine.length, i.events, JSON.stringify(i));
  }
});
