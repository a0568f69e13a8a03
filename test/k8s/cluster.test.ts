/**
 * gadget-run on a real Kubernetes 1.20 (test/k8s/cluster.ts): deployed with
 * `gadget-run deploy | kubectl apply -f -`, its DaemonSet pod Ready on the real
 * kubelet and answering for its node; more nodes as agent processes with the
 * ServiceAccount's own token; a failing node, a missing node, Ctrl-C; a runbook's
 * kubectl-only run; the RBAC proven least privilege; undeploy leaves nothing.
 * The tests run in order and share the deployment.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AuthorizationV1Api, CustomObjectsApi, KubeConfig, setHeaderOptions } from '@kubernetes/client-node';
import { AGENT_CLUSTER_RULES, AGENT_NAMESPACED_RULES } from '../../src/k8s/manifests.ts';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
import {
  adminConfig, clusterSuite, eventually, gadgetRun, kubectl, NODE, registerNodes, serviceAccountToken, skipK8s,
  startAgent, writeTokenKubeconfig,
} from './cluster.ts';

const SA = 'system:serviceaccount:gadget:gadget-run';
let token = '';
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `gadget-run-k8s-${p}-`));

function recipe(extra = '', duration = '3s'): string {
  const file = path.join(tmp('recipe'), 'r.yaml');
  fs.writeFileSync(file, `name: k8s-test
duration: ${duration}
${extra}
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.ndjson]
assertions:
  - name: saw the marker
    expr: '$count(steps.execs[$contains(comm, "grk8smark")]) > 0'
`);
  return file;
}

/** Keeps starting a uniquely named program, so every node's trace/exec sees it (they share this kernel). */
function marker(): { stop(): void } {
  const bin = path.join(tmp('marker'), 'grk8smark');
  fs.copyFileSync('/bin/true', bin);
  fs.chmodSync(bin, 0o755);
  const timer = setInterval(() => spawn(bin, [], { stdio: 'ignore' }), 100);
  return { stop: () => clearInterval(timer) };
}

const summaryOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as ClusterSummary;
const events = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

// the first test deploys (as users do, through kubectl); the suite's teardown undeploys, stops the agents and removes the simulated nodes
const suite = clusterSuite();
const agents = suite.agents;

test('gadget-run deploy | kubectl apply -f - is accepted, and the DaemonSet pod becomes Ready on the kubelet', { skip: skipK8s, timeout: 300_000 }, async () => {
  const printed = await gadgetRun(['deploy', '--image', suite.cluster.image, '--pull-policy', 'Never']).done;
  assert.equal(printed.code, 0, printed.stderr);
  const applied = await kubectl(['apply', '-f', '-'], printed.stdout);
  assert.equal(applied.code, 0, applied.stderr);
  for (const what of ['customresourcedefinition.apiextensions.k8s.io/gadgetruns.gadget-run.dev', 'namespace/gadget', 'daemonset.apps/gadget-run', 'clusterrole.rbac.authorization.k8s.io/gadget-run-agent']) {
    assert.match(applied.stdout, new RegExp(what.replace(/\./g, '\\.')));
  }
  await eventually('the agent pod Ready', async () => {
    const r = await kubectl(['-n', 'gadget', 'get', 'pods', '-l', 'app.kubernetes.io/name=gadget-run', '-o', 'json']);
    const pods = JSON.parse(r.stdout || '{"items":[]}').items;
    const ready = pods.find((p: any) => p.spec.nodeName === NODE && p.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
    return ready ? true : undefined;
  }, 120_000);
  token = await serviceAccountToken(adminConfig());
});

test('a cluster run through the CLI: the DaemonSet agent returns its node’s events, each with node', { skip: skipK8s, timeout: 300_000 }, async () => {
  const out = tmp('single');
  const m = marker();
  // no selection: the whole node (a selection is the kernel's container set: test/k8s/pods.test.ts)
  const r = await gadgetRun(['run', recipe(), '--cluster', '--node', NODE, '--out', out]).done;
  m.stop();
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = summaryOf(out);
  assert.deepEqual(s.cluster.nodes.map((n) => [n.node, n.phase]), [[NODE, 'Succeeded']]);
  assert.ok(fs.existsSync(path.join(out, NODE, 'raw', 'execs.ndjson')));
  assert.ok(fs.existsSync(path.join(out, NODE, 'summary.json')));
  // raw/ holds the events as captured; the recipe's output, after the enrich stage, names their node
  const merged = events(path.join(out, 'execs.ndjson'));
  assert.ok(merged.length > 0 && merged.every((e) => e.node === NODE));
  assert.ok(merged.some((e) => e.comm === 'grk8smark'), 'the marker program seen from inside the pod');
  assert.equal(s.assertions[0].status, 'passed');
});

test('more nodes: agents as processes with the ServiceAccount token; per-node and merged artifacts; a failing node fails the run', { skip: skipK8s, timeout: 300_000 }, async () => {
  await registerNodes(['sim-a', 'sim-b']);
  agents.push(await startAgent('sim-a', token));
  // a node whose gadgets cannot load: its agent reports the step's real error
  agents.push(await startAgent('sim-b', token, ['--objects', '/nonexistent']));
  const out = tmp('multi');
  const m = marker();
  const r = await gadgetRun(['run', recipe(), '--cluster', '--node', `${NODE},sim-a`, '--node', 'sim-b', '--out', out]).done;
  m.stop();
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const s = summaryOf(out);
  const phase = Object.fromEntries(s.cluster.nodes.map((n) => [n.node, n.phase]));
  assert.deepEqual(phase, { [NODE]: 'Succeeded', 'sim-a': 'Succeeded', 'sim-b': 'Failed' });
  assert.match(s.cluster.nodes.find((n) => n.node === 'sim-b')!.message!, /execs/);
  assert.match(s.error!, /sim-b/);
  assert.match(r.stdout, /sim-b: Failed/);
  for (const n of [NODE, 'sim-a']) assert.ok(events(path.join(out, n, 'raw', 'execs.ndjson')).length > 0, n);
  // the merge records which bytes came from which node, for the enrich stage
  const parts = JSON.parse(fs.readFileSync(path.join(out, 'raw', 'execs.meta.json'), 'utf8')).parts as { node: string }[];
  assert.deepEqual(parts.map((p) => p.node).sort(), [NODE, 'sim-a'].sort());
  // the merged artifact (the recipe's own output) holds both nodes that ran
  const nodes = new Set(events(path.join(out, 'execs.ndjson')).map((e) => e.node));
  assert.deepEqual([...nodes].sort(), [NODE, 'sim-a'].sort());
  assert.equal(s.assertions[0].status, 'passed');
});

test('"all nodes attached" means attached: one exec started on that line is in the node\'s events', { skip: skipK8s, timeout: 300_000 }, async () => {
  const out = tmp('attached');
  const once = path.join(tmp('once'), 'grk8smark-once');
  fs.copyFileSync('/bin/true', once);
  fs.chmodSync(once, 0o755);
  const run = gadgetRun(['run', recipe('', '8s'), '--cluster', '--node', NODE, '--out', out]);
  let stderr = '';
  run.child.stderr!.on('data', (d) => (stderr += d));
  await eventually('all nodes attached', async () => (/all 1 nodes attached/.test(stderr) ? true : run.child.exitCode !== null ? true : undefined), 120_000);
  // the node said Running when the agent picked the run up, before its programs were attached: a
  // workload started on that line lost its first opens (docs/kubernetes.md)
  execFileSync(once);
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const mine = events(path.join(out, NODE, 'raw', 'execs.ndjson')).filter((e) => e.comm === 'grk8smark-once');
  assert.equal(mine.length, 1, `the exec right after "all 1 nodes attached" was ${mine.length ? 'seen' : 'missed'}`);
});

test('a node with no agent is reported; allow_missing_nodes lets the run pass without it', { skip: skipK8s, timeout: 300_000 }, async () => {
  await registerNodes(['sim-c']);
  const out = tmp('missing');
  const m = marker();
  const r = await gadgetRun(['run', recipe('cluster: {allow_missing_nodes: true, attach_timeout: 4s}'), '--cluster', '--node', 'sim-a', '--node', 'sim-c', '--out', out]).done;
  m.stop();
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = summaryOf(out);
  const c = s.cluster.nodes.find((n) => n.node === 'sim-c')!;
  assert.equal(c.phase, 'Missing');
  assert.match(c.message!, /no agent started the run within 4 s/);
});

test('an agent of the release before answers in the run\'s status.nodes: the CLI follows it there too', { skip: skipK8s, timeout: 300_000 }, async () => {
  // sim-old has no agent of this release: its answers are written as the previous release's agent wrote them
  await registerNodes(['sim-old']);
  const out = tmp('old-agent');
  const run = gadgetRun(['run', recipe('cluster: {attach_timeout: 60s}'), '--cluster', '--node', 'sim-old', '--out', out]);
  const name = await eventually('the run to be created', async () => {
    const r = await kubectl(['-n', 'gadget', 'get', 'gadgetruns', '-o', 'json']);
    return (JSON.parse(r.stdout || '{"items":[]}').items as { metadata: { name: string }; spec: { nodes?: string[] } }[]).find((x) => x.spec.nodes?.includes('sim-old'))?.metadata.name;
  });
  const custom = adminConfig().makeApiClient(CustomObjectsApi);
  const answer = (entry: Record<string, string>) => custom.patchNamespacedCustomObjectStatus(
    { group: 'gadget-run.dev', version: 'v1alpha1', namespace: 'gadget', plural: 'gadgetruns', name, body: { status: { nodes: { 'sim-old': entry } } } },
    setHeaderOptions('Content-Type', 'application/merge-patch+json'),
  );
  await answer({ phase: 'Running' });
  await answer({ phase: 'Failed', status: 'error', message: 'answered as the release before' });
  const r = await run.done;
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const old = summaryOf(out).cluster.nodes.find((n) => n.node === 'sim-old')!;
  assert.equal(old.phase, 'Failed');
  assert.equal(old.message, 'answered as the release before');
  assert.ok(old.attachedMs !== undefined, 'its Running was seen');
  assert.match(r.stderr, /node sim-old: Failed — answered as the release before/);
});

test('Ctrl-C cancels the run on every node; what they captured is merged', { skip: skipK8s, timeout: 300_000 }, async () => {
  const out = tmp('cancel');
  const run = gadgetRun(['run', recipe('', '10m'), '--cluster', '--node', NODE, '--node', 'sim-a', '--out', out]);
  let stderr = '';
  run.child.stderr!.on('data', (d) => (stderr += d));
  await eventually('both nodes running', async () => ((stderr.match(/: Running/g) ?? []).length >= 2 ? true : undefined), 60_000);
  const m = marker();
  await new Promise((r) => setTimeout(r, 1500));
  m.stop();
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stderr);
  const s = summaryOf(out);
  assert.equal(s.status, 'interrupted');
  assert.deepEqual(s.cluster.nodes.map((n) => n.phase).sort(), ['Cancelled', 'Cancelled']);
  assert.ok(events(path.join(out, 'raw', 'execs.ndjson')).some((e) => e.comm === 'grk8smark'));
});

test('a runbook applies a GadgetRun with kubectl and reads its status; deleting the run collects its results', { skip: skipK8s, timeout: 300_000 }, async () => {
  const run = {
    apiVersion: 'gadget-run.dev/v1alpha1',
    kind: 'GadgetRun',
    metadata: { name: 'runbook-census', namespace: 'gadget' },
    spec: { nodes: ['sim-a'], recipe: fs.readFileSync(path.join(import.meta.dirname, '../../recipes/cluster-exec-census.yaml'), 'utf8'), maxDuration: '2s' },
  };
  const applied = await kubectl(['apply', '-f', '-'], JSON.stringify(run));
  assert.equal(applied.code, 0, applied.stderr);
  const phase = await eventually('the run to finish on sim-a', async () => {
    const r = await kubectl(['-n', 'gadget', 'get', 'gadgetrunnodes', '-l', 'gadget-run.dev/run=runbook-census', '-o', 'jsonpath={.items[?(@.spec.node=="sim-a")].status.phase}']);
    return ['Succeeded', 'Failed'].includes(r.stdout) ? r.stdout : undefined;
  });
  assert.equal(phase, 'Succeeded');
  // the node's answer is an object of its own, and says only that (phase, status, message): it stays small
  const answer = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'gadgetrunnode', 'runbook-census-sim-a', '-o', 'json'])).stdout);
  assert.equal(answer.spec.node, 'sim-a');
  assert.equal(answer.status.phase, 'Succeeded');
  assert.deepEqual(Object.keys(answer.status).filter((k) => !['phase', 'status', 'message'].includes(k)), [], JSON.stringify(answer.status));
  // the run itself is written by nobody but its creator
  assert.equal((await kubectl(['-n', 'gadget', 'get', 'gadgetrun', 'runbook-census', '-o', 'jsonpath={.status}'])).stdout, '');
  const cms = await kubectl(['-n', 'gadget', 'get', 'configmaps', '-l', 'gadget-run.dev/run=runbook-census', '-o', 'name']);
  assert.ok(cms.stdout.trim().length > 0, 'result chunks exist');
  // the node's full answer is its own object, readable with kubectl too
  const report = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'configmap', 'runbook-census-sim-a-0', '-o', 'jsonpath={.data.result\\.json}'])).stdout);
  assert.equal(report.node, 'sim-a');
  assert.equal(report.phase, 'Succeeded');
  assert.deepEqual(report.steps.map((s: { id: string }) => s.id), ['execs']);
  assert.ok(report.apiCalls['create gadgetrunnodes'] === 1 && report.apiCalls['create configmaps'] >= 1, JSON.stringify(report.apiCalls));
  assert.equal((await kubectl(['-n', 'gadget', 'delete', 'gadgetrun', 'runbook-census'])).code, 0);
  await eventually('the garbage collector to delete the chunks and the answer', async () => {
    const left = await kubectl(['-n', 'gadget', 'get', 'configmaps,gadgetrunnodes', '-l', 'gadget-run.dev/run=runbook-census', '-o', 'name']);
    return left.stdout.trim() === '' ? true : undefined;
  });
});

test('RBAC: the agent identity may make exactly its calls; kubectl auth can-i and SubjectAccessReview refuse the rest', { skip: skipK8s, timeout: 300_000 }, async () => {
  const can = async (args: string[]) => (await kubectl(['auth', 'can-i', '--as', SA, ...args])).stdout.trim();
  // every rule the code derives, granted
  for (const r of [...AGENT_NAMESPACED_RULES, ...AGENT_CLUSTER_RULES]) {
    for (const verb of r.verbs) {
      for (const res of r.resources!) {
        const group = r.apiGroups![0] ? `.${r.apiGroups![0]}` : '';
        const [resource, sub] = res.split('/');
        const ns = AGENT_CLUSTER_RULES.includes(r) ? ['--all-namespaces'] : ['-n', 'gadget'];
        assert.equal(await can([verb, `${resource}${group}`, ...(sub ? ['--subresource', sub] : []), ...ns]), 'yes', `${verb} ${res}`);
      }
    }
  }
  // and not a step further
  const refused: string[][] = [
    ['get', 'secrets', '-n', 'gadget'],
    ['list', 'secrets', '--all-namespaces'],
    ['create', 'configmaps', '-n', 'default'],
    ['get', 'configmaps', '-n', 'gadget'],
    ['delete', 'configmaps', '-n', 'gadget'],
    ['update', 'configmaps', '-n', 'gadget'],
    ['create', 'gadgetruns.gadget-run.dev', '-n', 'gadget'],
    ['patch', 'gadgetruns.gadget-run.dev', '-n', 'gadget'],
    ['delete', 'gadgetruns.gadget-run.dev', '-n', 'gadget'],
    ['list', 'gadgetruns.gadget-run.dev', '-n', 'default'],
    ['update', 'gadgetruns.gadget-run.dev', '--subresource', 'status', '-n', 'gadget'],
    ['patch', 'gadgetruns.gadget-run.dev', '--subresource', 'status', '-n', 'gadget'],
    ['update', 'gadgetrunnodes.gadget-run.dev', '-n', 'gadget'],
    ['delete', 'gadgetrunnodes.gadget-run.dev', '-n', 'gadget'],
    ['list', 'gadgetrunnodes.gadget-run.dev', '-n', 'gadget'],
    ['create', 'gadgetrunnodes.gadget-run.dev', '-n', 'default'],
    ['get', 'pods', '-n', 'default'],
    ['create', 'pods', '-n', 'gadget'],
    ['list', 'nodes'],
    // the owner walk reads a ReplicaSet or a Job by name, nothing more
    ['list', 'replicasets.apps', '--all-namespaces'],
    ['watch', 'replicasets.apps', '--all-namespaces'],
    ['get', 'deployments.apps', '-n', 'default'],
    ['get', 'statefulsets.apps', '-n', 'default'],
    ['list', 'jobs.batch', '--all-namespaces'],
    ['get', 'cronjobs.batch', '-n', 'default'],
    ['patch', 'pods', '-n', 'default'],
    ['create', 'serviceaccounts/token', '-n', 'gadget'],
    ['*', '*'],
  ];
  for (const args of refused) assert.equal(await can(args), 'no', args.join(' '));

  // the same through the API, as the agent itself (SelfSubjectAccessReview with its own token)
  const dir = tmp('sar');
  const kc = new KubeConfig();
  kc.loadFromFile(writeTokenKubeconfig(path.join(dir, 'kubeconfig'), token));
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const ask = async (verb: string, resource: string, namespace?: string, group = '', subresource?: string) =>
    (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, resource, namespace, group, subresource } } } })).status!.allowed;
  assert.equal(await ask('watch', 'gadgetruns', 'gadget', 'gadget-run.dev'), true);
  assert.equal(await ask('create', 'gadgetrunnodes', 'gadget', 'gadget-run.dev'), true);
  assert.equal(await ask('patch', 'gadgetruns', 'gadget', 'gadget-run.dev', 'status'), false);
  assert.equal(await ask('get', 'secrets', 'gadget'), false);
  assert.equal(await ask('create', 'configmaps', 'kube-system'), false);
  // and every call the agents made in the runs above went through under this identity
  assert.equal(await can(['list', 'pods', '--all-namespaces']), 'yes');
  assert.equal(await can(['watch', 'pods', '--all-namespaces']), 'yes');
  assert.equal(await ask('get', 'replicasets', 'default', 'apps'), true);
  assert.equal(await ask('list', 'replicasets', 'default', 'apps'), false);
});

test('undeploy --wait removes everything deploy created', { skip: skipK8s, timeout: 300_000 }, async () => {
  const r = await gadgetRun(['undeploy', '--wait']).done;
  assert.equal(r.code, 0, r.stderr);
  for (const what of [['namespace', 'gadget'], ['crd', 'gadgetruns.gadget-run.dev'], ['crd', 'gadgetrunnodes.gadget-run.dev'], ['clusterrole', 'gadget-run-agent'], ['clusterrolebinding', 'gadget-run-agent']]) {
    const got = await kubectl(['get', ...what]);
    assert.match(got.stderr, /NotFound/, what.join(' '));
  }
  const pods = await kubectl(['get', 'pods', '--all-namespaces', '-l', 'app.kubernetes.io/name=gadget-run', '-o', 'name']);
  assert.equal(pods.stdout.trim(), '');
});
