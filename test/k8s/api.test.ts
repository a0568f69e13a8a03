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
import { after, before, test } from 'node:test';
import { runCluster } from '../../src/api/index.ts';
import { deployAgent, gadgetRun, KUBECONFIG, NODE, skipK8s, useCluster, type Cluster } from './cluster.ts';
import { assertValidSummary } from '../runner/summary-schema.ts';

let cluster: Cluster | undefined;
// a comm of its own (at most 15 characters): only this test's execs match the step's filter
const COMM = `grapi${process.pid % 100_000}`;

before(async () => {
  if (skipK8s) return;
  cluster = await useCluster();
  await deployAgent(cluster.image);
}, { timeout: 600_000 });

after(async () => {
  if (skipK8s) return;
  await gadgetRun(['undeploy', '--wait']).done;
  await cluster?.stop();
}, { timeout: 180_000 });

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
