/**
 * The container table of `run --cluster`: mergeRaw merges each node's
 * containers.json into DIR/raw with rows naming their node, and the lookups
 * (evaluation's join, advise/network-policy, advise/seccomp-profile) key by
 * node and cgroup id, because cgroup ids are inode numbers, unique per node
 * only. Recorded node folders; no cluster.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { mergeRaw } from '../../src/k8s/cluster-run.ts';
import { CONTAINERS_FILE, mergeTables, type ContainerTable } from '../../src/containers/table.ts';
import { enrichRaw } from '../../src/runner/enrich.ts';
import { evaluate } from '../../src/runner/evaluate.ts';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { networkPolicies } from '../../src/gadgets/advise/network-policy/policies.ts';
import { profileObjectMetadata } from '../../src/gadgets/advise/seccomp-profile/recorder.ts';
import { captured } from '../runner/evaluate-helpers.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-cluster-merge-'));

/** pods labelled with their node too (site), so a peer paired with the other node's pod shows in its selector */
const row = (cgroupId: string, pod: string, app: string) => ({
  id: `${pod}-${cgroupId}`.padStart(64, 'c'), runtime: 'containerd' as const, cgroupId, cgroupPath: `/kubepods/${pod}`,
  k8s: { namespace: 'default', pod, container: 'main', labels: { app, site: pod.slice(-1) } },
});
// the same cgroup ids on both nodes, naming other pods: node a's 101 is its server, node b's its client
const TABLES: Record<string, ContainerTable> = {
  a: { containers: [row('101', 'np-server-a', 'np-server'), row('102', 'np-client-a', 'np-client')], steps: {} },
  b: { containers: [row('101', 'np-client-b', 'np-client'), row('102', 'np-server-b', 'np-server'), row('103', 'other-b', 'other')], steps: {} },
};
const SERVER: Record<string, number> = { a: 101, b: 102 };
const CLIENT: Record<string, number> = { a: 102, b: 101 };
const ev = (cgroup_id: number, operation: string, saddr: string, sport: number, daddr: string, dport: number, ret = 0) =>
  ({ operation, cgroup_id, saddr, sport, daddr, dport, ret });
/** on each node its hostNetwork client connects to its server over the same loopback 4-tuple */
const events = (node: string) => [
  ev(CLIENT[node], 'connect', '127.0.0.1', 40000, '127.0.0.1', 8080),
  ev(SERVER[node], 'accept', '127.0.0.1', 8080, '127.0.0.1', 40000, 5),
];
const FIELDS = ['operation', 'cgroup_id', 'saddr', 'sport', 'daddr', 'dport', 'ret'];
const peer = (app: string, site: string) => [{ podSelector: { matchLabels: { app, site } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'default' } } }];
const policy = (pod: string, app: string, side: 'ingress' | 'egress', peerApp: string) => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: pod, namespace: 'default' },
  spec: {
    podSelector: { matchLabels: { app, site: pod.slice(-1) } }, policyTypes: ['Ingress', 'Egress'],
    ingress: side === 'ingress' ? [{ from: peer(peerApp, pod.slice(-1)), ports: [{ protocol: 'TCP', port: 8080 }] }] : [],
    egress: side === 'egress' ? [{ to: peer(peerApp, pod.slice(-1)), ports: [{ protocol: 'TCP', port: 8080 }] }] : [],
  },
});
const EXPECTED = [
  policy('np-client-a', 'np-client', 'egress', 'np-server'),
  policy('np-client-b', 'np-client', 'egress', 'np-server'),
  policy('np-server-a', 'np-server', 'ingress', 'np-client'),
  policy('np-server-b', 'np-server', 'ingress', 'np-client'),
];

test('mergeTables: two nodes whose tables share cgroup ids map each event to its own node’s pod (network policies)', () => {
  const merged = mergeTables(Object.entries(TABLES).map(([node, table]) => ({ node, table })));
  assert.deepEqual(merged.containers.map((c) => [c.node, c.cgroupId, c.k8s?.pod]), [
    ['a', '101', 'np-server-a'], ['a', '102', 'np-client-a'], ['b', '101', 'np-client-b'], ['b', '102', 'np-server-b'], ['b', '103', 'other-b'],
  ]);
  const rows = ['a', 'b'].flatMap((node) => events(node).map((e) => ({ ...e, node })));
  // the loopback tuples are the same on both nodes: each pairs with its own node's other end
  assert.deepEqual(networkPolicies(rows, { containers: merged }), EXPECTED);
});

test('mergeTables: the SeccompProfile of a merged run is named after the pod of its own node’s cgroup', () => {
  const merged = mergeTables(Object.entries(TABLES).map(([node, table]) => ({ node, table })));
  assert.deepEqual(profileObjectMetadata(['101'], merged, 'r', 'a'), { name: 'np-server-a', namespace: 'default' });
  assert.deepEqual(profileObjectMetadata(['101'], merged, 'r', 'b'), { name: 'np-client-b', namespace: 'default' });
  // a cgroup the node's table does not hold (103 is node b's) names no pod
  assert.deepEqual(profileObjectMetadata(['103'], merged, 'r', 'a'), { name: 'r' });
});

test('enrich over a merged table: an event gains its own node’s container, never another node’s', async () => {
  const dir = tmp();
  const merged = mergeTables(Object.entries(TABLES).map(([node, table]) => ({ node, table })));
  const raw = path.join(dir, 'in.ndjson');
  // node a's part, then node b's: the same cgroup ids, other pods
  const a = '{"cgroup_id":101}\n{"cgroup_id":103}\n';
  const b = '{"cgroup_id":101}\n';
  fs.writeFileSync(raw, a + b);
  await enrichRaw(raw, path.join(dir, 'out.ndjson'), merged, 's', [{ node: 'a', bytes: a.length, events: 2 }, { node: 'b', bytes: b.length, events: 1 }]);
  const out = fs.readFileSync(path.join(dir, 'out.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((e) => [e.node, e.pod]), [['a', 'np-server-a'], ['a', undefined], ['b', 'np-client-b']]);
  assert.deepEqual(out[1], { cgroup_id: 103, node: 'a' }, '103 is node b’s container, not node a’s');
});

test('mergeRaw: the merged evaluation of recorded node folders gives the same per-pod policies as each node’s own', async () => {
  const dir = tmp();
  const text = 'name: m\nduration: 1s\nsteps:\n  - id: np\n    gadget: advise/network-policy\n    outputs: [np.ndjson]\n';
  const loaded = parseRecipe(text, 'm.yaml');
  const docs = (d: string) => fs.readFileSync(path.join(d, 'np.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const own: unknown[] = [];
  for (const node of ['a', 'b']) {
    // what the agent does: capture and evaluate on the node, then upload its folder as captured
    const nodeDir = path.join(dir, node);
    captured(nodeDir, { np: events(node) }, FIELDS, { np: { gadget: 'advise/network-policy' } });
    fs.writeFileSync(path.join(nodeDir, 'raw', CONTAINERS_FILE), JSON.stringify(TABLES[node]));
    await evaluate(loaded.recipe, nodeDir);
    own.push(...docs(nodeDir));
  }
  const name = (d: any) => d.metadata.name as string;
  assert.deepEqual([...own].sort((x, y) => name(x).localeCompare(name(y))), EXPECTED);
  await mergeRaw(loaded, dir, ['a', 'b']);
  const table = JSON.parse(fs.readFileSync(path.join(dir, 'raw', CONTAINERS_FILE), 'utf8')) as ContainerTable;
  assert.deepEqual(table.containers.map((c) => c.node), ['a', 'a', 'b', 'b', 'b']);
  const ev = await evaluate(loaded.recipe, dir);
  assert.equal(ev.steps[0].status, 'ok', ev.steps[0].reason);
  assert.deepEqual(docs(dir), EXPECTED);
});
