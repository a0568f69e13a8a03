/**
 * Scale: 50 simulated nodes (Node objects without a kubelet), each with its own
 * agent process in --fake mode (synthetic events, no kernel), all authenticated
 * as the agent's ServiceAccount. One `run --cluster` over all of them completes
 * and merges. The figures (time to all attached, to all merged, API calls per
 * node by verb, as the agents counted them and as the API server did) are printed
 * as test diagnostics — speed is measured here, never asserted. What is asserted
 * is the design that makes it scale: each node writes the shared run object at
 * most twice (Running, final) and keeps its entry there small; everything else
 * goes into its own objects.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
import { adminConfig, apiServerRequests, gadgetRun, kubectl, registerNodes, removeSimulatedNodes, requestDelta, serviceAccountToken, skipK8s, startAgent, useCluster, type AgentProcess, type Cluster } from './cluster.ts';

const N = 50;
const nodes = Array.from({ length: N }, (_, i) => `sim-${String(i).padStart(3, '0')}`);
let cluster: Cluster | undefined;
const agents: AgentProcess[] = [];

before(async () => {
  if (skipK8s) return;
  cluster = await useCluster();
}, { timeout: 600_000 });

after(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  if (skipK8s) return;
  await removeSimulatedNodes();
  await gadgetRun(['undeploy', '--wait']).done;
  await cluster?.stop();
}, { timeout: 180_000 });

const perNode = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round((v / N) * 100) / 100]));

test(`a ${N}-node run (fake agents as processes) completes and merges`, { skip: skipK8s, timeout: 600_000 }, async (t) => {
  // deploy --apply: the CLI's own server-side apply, not kubectl's
  const deployed = await gadgetRun(['deploy', '--apply', '--image', cluster!.image, '--pull-policy', 'Never']).done;
  assert.equal(deployed.code, 0, deployed.stderr);
  await registerNodes(nodes);
  const token = await serviceAccountToken(adminConfig());
  const t0 = Date.now();
  // 50 Node processes starting at once on 2 cores take ~40 s; more when other tests load the machine
  agents.push(...(await Promise.all(nodes.map((n) => startAgent(n, token, ['--fake'], 300_000)))));
  t.diagnostic(`${N} agent processes ready in ${Date.now() - t0} ms`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-scale-'));
  const file = path.join(dir, 'r.yaml');
  fs.writeFileSync(file, `name: scale
duration: 2s
cluster: {attach_timeout: 120s}
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.csv]
  - id: procs
    gadget: snapshot/process
assertions:
  - name: every node answered
    expr: '$count($distinct(steps.execs.node)) = ${N}'
`);
  const out = path.join(dir, 'out');
  const before = await apiServerRequests();
  const started = Date.now();
  const r = await gadgetRun(['run', file, '--cluster', '--node', nodes.join(','), '--out', out]).done;
  const wall = Date.now() - started;
  const server = requestDelta(before, await apiServerRequests());
  t.diagnostic(`API server requests during the run (verb resource code): ${JSON.stringify(server)}`);
  assert.equal(r.code, 0, r.stderr.slice(-4000) + r.stdout);

  // the merge: every node's folder, 50 nodes' events in the merged artifact
  const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as ClusterSummary;
  assert.equal(s.cluster.nodes.filter((n) => n.phase === 'Succeeded').length, N);
  for (const n of nodes) assert.ok(fs.existsSync(path.join(out, n, 'raw', 'execs.ndjson')), n);
  const merged = fs.readFileSync(path.join(out, 'raw', 'execs.ndjson'), 'utf8').trim().split('\n');
  assert.equal(merged.length, N * 10);
  // the merge records which bytes came from which node (the enrich stage names each event's node from it)
  const parts = JSON.parse(fs.readFileSync(path.join(out, 'raw', 'execs.meta.json'), 'utf8')).parts as { node: string }[];
  assert.deepEqual(parts.map((p) => p.node).sort(), nodes);
  const csv = fs.readFileSync(path.join(out, 'execs.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, N * 10 + 1);
  assert.deepEqual(new Set(csv.slice(1).map((l) => l.split(',').at(-1))).size, N);
  assert.equal(s.assertions[0].status, 'passed');

  // the shared object: at most Running + final per node (coalesced: fewer), and each entry small
  const patched = Object.entries(server).filter(([k]) => /^patch gadgetruns\/status 2\d\d$/.test(k)).reduce((a, [, v]) => a + v, 0);
  assert.ok(patched >= N && patched <= 2 * N, `${patched} status patches applied for ${N} nodes`);
  const status = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'gadgetrun', s.cluster.run, '-o', 'jsonpath={.status.nodes}'])).stdout) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(status).sort(), nodes);
  for (const e of Object.values(status)) assert.deepEqual(Object.keys(e).filter((k) => !['phase', 'status', 'message'].includes(k)), []);
  // every node's report came back (its own object), with what it sent
  for (const n of s.cluster.nodes) assert.ok(n.apiCallsByVerb?.['patch gadgetruns/status'], `${n.node}: ${JSON.stringify(n)}`);

  const byVerb: Record<string, number> = {};
  for (const n of s.cluster.nodes) for (const [k, v] of Object.entries(n.apiCallsByVerb ?? {})) byVerb[k] = (byVerb[k] ?? 0) + v;
  const calls = s.cluster.nodes.map((n) => n.apiCalls ?? 0);
  const attached = s.cluster.nodes.map((n) => n.attachedMs ?? 0).sort((a, b) => a - b);
  const figures = {
    nodes: N,
    wallMs: wall,
    allAttachedMs: s.cluster.allAttachedMs,
    attachedMedianMs: attached[Math.floor(N / 2)],
    allDoneMs: s.cluster.allDoneMs,
    mergedMs: s.cluster.mergedMs,
    // per node and run, as the agents counted them (retries included)
    agentCallsPerNode: { min: Math.min(...calls), max: Math.max(...calls), byVerb: perNode(byVerb) },
    // per node, as the API server counted them (every client of the gadget-run resources, the CLI too)
    serverCallsPerNode: perNode(server),
    statusBytesPerNode: Math.round(JSON.stringify(status).length / N),
    cliApiCalls: s.cluster.cliApiCalls,
  };
  t.diagnostic(`figures: ${JSON.stringify(figures)}`);
});
