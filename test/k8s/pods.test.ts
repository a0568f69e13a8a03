/**
 * Pods in live events, on the real test cluster (test/k8s/cluster.ts): the
 * DaemonSet's agent names every event of a pod's containers (namespace, pod,
 * container, labels, top owner), and a run's -l selection is the kernel's
 * container set on the node: a selected pod's events only, from a pod
 * already running and from one started after the steps attached (its
 * entrypoint, the container's first exec, included).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
import { agentPid, attachments, clusterSuite, eventually, gadgetRun, kubectl, NODE, skipK8s } from './cluster.ts';

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `gadget-run-k8s-pods-${p}-`));
const events = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const NS = 'default';
const marks = { x: `grpodx${process.pid}`, y: `grpody${process.pid}`, z: `grpodz${process.pid}` };

/**
 * A container that keeps opening a file named after its mark and starting a
 * child with its mark as an argument (node is what the gadget-run image has),
 * on the host network (the test cluster has no pod network) and on the node.
 */
function podSpec(mark: string) {
  const script = `const {spawn}=require('child_process');const fs=require('fs');` +
    `setInterval(()=>{try{fs.openSync('/${mark}')}catch{}},200);` +
    `setInterval(()=>spawn('/usr/bin/node',['-e','0','${mark}'],{stdio:'ignore'}),1000);`;
  return {
    nodeName: NODE,
    hostNetwork: true,
    terminationGracePeriodSeconds: 0,
    containers: [{ name: 'main', image: suite.cluster.image, imagePullPolicy: 'Never', command: ['/usr/bin/node', '-e', script, mark] }],
  };
}

async function apply(obj: object): Promise<void> {
  const r = await kubectl(['apply', '-f', '-'], JSON.stringify(obj));
  assert.equal(r.code, 0, r.stderr);
}

async function running(selector: string): Promise<void> {
  await eventually(`pod ${selector} running`, async () => {
    const r = await kubectl(['-n', NS, 'get', 'pods', '-l', selector, '-o', 'json']);
    const pods = JSON.parse(r.stdout || '{"items":[]}').items;
    return pods.length && pods.every((p: any) => p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready) ? true : undefined;
  }, 120_000);
}

const suite = clusterSuite({
  deploy: true,
  cleanup: async () => {
    await kubectl(['-n', NS, 'delete', 'deployment', 'grpod-x', '--wait=false']);
    await kubectl(['-n', NS, 'delete', 'pod', 'grpod-y', 'grpod-z', '--grace-period=0', '--wait=false']);
  },
});

test('-l app=x: the kernel sees pod x (a Deployment’s, running before) and pod z (started after attach, from its first exec), not pod y; events carry their pod', { skip: skipK8s, timeout: 400_000 }, async () => {
  // x: a Deployment's pod (owner walk: ReplicaSet → Deployment); y: a bare pod on the same node, not selected
  await apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'grpod-x', namespace: NS }, spec: { replicas: 1, selector: { matchLabels: { app: 'grpod-x' } }, template: { metadata: { labels: { app: 'grpod-x', tier: 'test' } }, spec: podSpec(marks.x) } } });
  await apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'grpod-y', namespace: NS, labels: { app: 'grpod-y' } }, spec: podSpec(marks.y) });
  await running('app=grpod-x');
  await running('app=grpod-y');
  const pid = await agentPid();
  const before = attachments(pid);

  const out = tmp('select');
  const file = path.join(tmp('recipe'), 'r.yaml');
  // long enough for a slow pod start; Ctrl-C ends it once z has run (the captured events are kept)
  fs.writeFileSync(file, `name: k8s-pods
duration: 10m
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.ndjson]
  - id: opens
    gadget: trace/open
    outputs: [opens.ndjson]
`);
  const run = gadgetRun(['run', file, '--cluster', '--node', NODE, '-l', 'app=grpod-x', '--out', out]);
  // z starts once the agent's steps hold their attachments, stable for a second
  let last = -1;
  await eventually('the agent’s steps attached', async () => {
    const n = attachments(pid);
    const stable = n > before && n === last;
    last = n;
    return stable ? true : undefined;
  }, 120_000);
  await new Promise((r) => setTimeout(r, 1000));
  await apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'grpod-z', namespace: NS, labels: { app: 'grpod-x', tier: 'late' } }, spec: podSpec(marks.z) });
  await running('tier=late');
  // z's opens and children go on while it runs; two seconds of them
  await new Promise((r) => setTimeout(r, 2000));
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stderr + r.stdout);
  const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as ClusterSummary;
  assert.deepEqual(s.cluster.nodes.map((n) => [n.node, n.phase]), [[NODE, 'Cancelled']]);
  assert.ok(s.cluster.nodes[0].pods!.some((p) => p.startsWith(`${NS}/grpod-x-`)), JSON.stringify(s.cluster.nodes[0]));
  assert.ok(!s.cluster.nodes[0].pods!.includes(`${NS}/grpod-y`));

  // the recipe's outputs: the events after the enrich stage (raw/ holds them as captured)
  const execs = events(path.join(out, 'execs.ndjson'));
  const opens = events(path.join(out, 'opens.ndjson'));
  const withMark = (list: any[], mark: string) => list.filter((e) => (e.args ?? []).includes(mark) || e.path === `/${mark}`);
  const x = [...withMark(execs, marks.x), ...withMark(opens, marks.x)];
  assert.ok(withMark(execs, marks.x).length > 0 && withMark(opens, marks.x).length > 0, 'pod x’s execs and opens');
  for (const e of x) {
    assert.equal(e.namespace, NS);
    assert.match(e.pod, /^grpod-x-/);
    assert.equal(e.container, 'main');
    assert.deepEqual(e.labels, { app: 'grpod-x', tier: 'test', 'pod-template-hash': e.labels['pod-template-hash'] });
    assert.equal(e.owner, 'Deployment/grpod-x', 'the top owner, through the ReplicaSet');
    assert.equal(e.node, NODE);
    assert.match(e.container_id, /^[0-9a-f]{64}$/);
  }
  assert.deepEqual([...withMark(execs, marks.y), ...withMark(opens, marks.y)], [], 'pod y is not selected: none of its events');
  // only the selection's pods: every event is a selected pod's
  assert.deepEqual([...new Set([...execs, ...opens].map((e) => e.labels?.app))], ['grpod-x']);
  const z = withMark(execs, marks.z);
  assert.ok(z.every((e) => e.pod === 'grpod-z' && e.container === 'main' && e.labels.tier === 'late'), JSON.stringify(z[0]));
  const entry = z.find((e) => e.args[1] === '-e' && e.args.at(-1) === marks.z && e.args[2].includes('setInterval'));
  assert.ok(entry, `pod z’s entrypoint, its first exec: ${JSON.stringify(z.slice(0, 2))}`);
  assert.deepEqual(withMark(opens, marks.z).map((e) => e.pod).slice(0, 1), ['grpod-z']);
});

test('no selection: every event of a pod’s container still carries its pod (host processes carry none)', { skip: skipK8s, timeout: 300_000 }, async () => {
  const out = tmp('all');
  const file = path.join(tmp('recipe'), 'r.yaml');
  fs.writeFileSync(file, `name: k8s-pods-all
duration: 4s
steps:
  - id: opens
    gadget: trace/open
    outputs: [opens.ndjson]
`);
  const r = await gadgetRun(['run', file, '--cluster', '--node', NODE, '--out', out]).done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const opens = events(path.join(out, 'opens.ndjson'));
  const y = opens.filter((e) => e.path === `/${marks.y}`);
  assert.ok(y.length > 0, 'pod y’s opens');
  assert.ok(y.every((e) => e.pod === 'grpod-y' && e.namespace === NS && e.container === 'main' && e.labels.app === 'grpod-y' && e.owner === undefined));
  assert.ok(opens.some((e) => e.pod === undefined), 'the node’s own processes too, without pod fields');

  // -p and -c: one pod's one container, by name
  const one = tmp('one');
  const r2 = await gadgetRun(['run', file, '--cluster', '--node', NODE, '-n', NS, '-p', 'grpod-y', '-c', 'main', '--out', one]).done;
  assert.equal(r2.code, 0, r2.stderr + r2.stdout);
  const only = events(path.join(one, 'opens.ndjson'));
  assert.ok(only.some((e) => e.path === `/${marks.y}`), 'pod y’s opens');
  assert.deepEqual([...new Set(only.map((e) => `${e.namespace}/${e.pod}/${e.container}`))], [`${NS}/grpod-y/main`]);
});
