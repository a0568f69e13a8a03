/**
 * advise/network-policy over live pods on the real test cluster: two
 * hostNetwork pods on the node, a server (app=np-server) listening on a
 * loopback port and a client (app=np-client) connecting to it. `run --cluster`
 * makes each pod's policy in the node's folder and, from the merged events and
 * the merged container table (node-aware), the same in the run's own folder;
 * the API server accepts them (server-side apply, dry run). A selection of
 * one pod writes only its policy, whose peer is still the other pod, known
 * by its cgroup: the node is recorded whatever the selection.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { safeNodeDir } from '../../src/k8s/results.ts';
import { clusterRun, clusterSuite, kubectl, NODE, nodePod, skipK8s, startPods } from './cluster.ts';

const NS = 'default';
const MARK = `np${process.pid}`;
// a loopback port of this test's own (hostNetwork pods share the machine's loopback with neighbours' tests)
const PORT = 20000 + (process.pid % 10000);
const ADDR = '127.0.0.1';

const SERVER = `require('net').createServer((s)=>s.destroy()).listen(${PORT},'${ADDR}')`;
// connects every 200 ms; a refused connect (the server not up yet) is retried
const CLIENT = `const net=require('net');setInterval(()=>{const c=net.connect(${PORT},'${ADDR}',()=>c.destroy());c.on('error',()=>{})},200)`;

// its two pods beside the DaemonSet; removed before the undeploy, even after a failure
clusterSuite({
  deploy: true,
  setup: async (cluster) => {
    const pod = (app: string, script: string) => nodePod(cluster.image, app, NS, { app, 'np-test': MARK }, script);
    await startPods([pod('np-server', SERVER), pod('np-client', CLIENT)], NS, `np-test=${MARK}`);
  },
  cleanup: async () => {
    await kubectl(['-n', NS, 'delete', 'pod', 'np-server', 'np-client', '--grace-period=0', '--wait=false']);
  },
});

/** `run --cluster` of advise/network-policy over this test's pods (and `extra` selections), 6 s; its --out */
async function runPolicies(extra: string[]): Promise<string> {
  const r = await clusterRun('name: np-pods\nduration: 6s\nsteps:\n  - id: np\n    gadget: advise/network-policy\n    outputs: [policy.yaml]\n', ['-l', `np-test=${MARK}`, ...extra]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.out;
}

type Policy = { metadata: { name: string; namespace?: string }; spec: { podSelector: { matchLabels: Record<string, string> }; ingress: any[]; egress: any[] } };
const policies = (file: string) => parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJSON() as Policy);
const byApp = (docs: Policy[], app: string) => {
  const found = docs.filter((d) => d.spec.podSelector.matchLabels.app === app);
  assert.equal(found.length, 1, `one policy for app=${app}: ${JSON.stringify(docs.map((d) => d.metadata))}`);
  return found[0];
};
/** a rule whose peer is the pod selector app=<app> in the namespace, on TCP PORT */
const hasRule = (rules: any[], side: 'from' | 'to', app: string) =>
  rules.some((r) => r[side].some((p: any) => p.podSelector?.matchLabels?.app === app && p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === NS)
    && r.ports.some((p: any) => p.protocol === 'TCP' && p.port === PORT));

test('advise/network-policy over two live hostNetwork pods: ingress from the client, egress to the server, on the node and in the merge; the API server accepts them', { skip: skipK8s, timeout: 400_000 }, async () => {
  const out = await runPolicies([]);
  for (const where of [path.join(out, safeNodeDir(NODE)), out]) {
    const docs = policies(path.join(where, 'policy.yaml'));
    const server = byApp(docs, 'np-server');
    const client = byApp(docs, 'np-client');
    assert.deepEqual([server.metadata, client.metadata], [{ name: 'np-server', namespace: NS }, { name: 'np-client', namespace: NS }], where);
    assert.ok(hasRule(server.spec.ingress, 'from', 'np-client'), `${where}: server ingress ${JSON.stringify(server.spec.ingress)}`);
    assert.ok(hasRule(client.spec.egress, 'to', 'np-server'), `${where}: client egress ${JSON.stringify(client.spec.egress)}`);
  }
  const dry = await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=gadget-run-test', '-f', '-', '-o', 'name'], fs.readFileSync(path.join(out, 'policy.yaml'), 'utf8'));
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /networkpolicy.networking.k8s.io\/np-server/);
  assert.match(dry.stdout, /networkpolicy.networking.k8s.io\/np-client/);
});

test('-l narrows the documents, not the capture: only the server\'s policy, still with ingress from the client pod', { skip: skipK8s, timeout: 400_000 }, async () => {
  const out = await runPolicies(['-l', 'app=np-server']);
  for (const where of [path.join(out, safeNodeDir(NODE)), out]) {
    const docs = policies(path.join(where, 'policy.yaml'));
    assert.deepEqual(docs.map((d) => d.metadata), [{ name: 'np-server', namespace: NS }], `${where}: the selected pod's policy alone`);
    // the client is not selected, yet its connects were recorded: the peer is its pod, not an ipBlock of 127.0.0.1
    assert.ok(hasRule(docs[0].spec.ingress, 'from', 'np-client'), `${where}: server ingress ${JSON.stringify(docs[0].spec.ingress)}`);
  }
  // what was recorded is the node's: the client's connects are in the raw events
  // (as captured: their pod is the merged container table's row of their node and cgroup id)
  const raw = fs.readFileSync(path.join(out, 'raw', 'np.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const table = JSON.parse(fs.readFileSync(path.join(out, 'raw', 'containers.json'), 'utf8')) as { containers: { cgroupId: string; node?: string; k8s?: { pod?: string } }[] };
  const client = new Set(table.containers.filter((c) => c.node === NODE && c.k8s?.pod === 'np-client').map((c) => c.cgroupId));
  assert.ok(raw.some((e) => e.operation === 'connect' && e.dport === PORT && client.has(String(e.cgroup_id))), 'the client\'s connects were recorded');
});
