/**
 * The Kubernetes pieces that need no cluster: the client library loads on
 * this Node, manifests are what the docs promise, results survive the trip
 * through ConfigMap chunks, and a merge of nodes' captures is what evaluate reads.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { dumpYaml, KubeConfig, loadAllYaml, type V1ConfigMap } from '@kubernetes/client-node';
import YAML from 'yaml';
import { Agent, AGENT_REPLACED, callsSince, markReplaced, nodeObject, reportJitterMs, scopeToNode } from '../../src/k8s/agent.ts';
import { Api, Latest, retryable, withRetry } from '../../src/k8s/client.ts';
import { gadgetRunCrd, gadgetRunNodeCrd, MESSAGE_MAX, nodeStatus, type GadgetRun, type GadgetRunNode, type NodeResult } from '../../src/k8s/crd.ts';
import { CONTAINERS_FILE, type ContainerTable } from '../../src/containers/table.ts';
import { evaluate as evaluateAgain } from '../../src/runner/evaluate.ts';
import { apiServerUse, mergeRaw, renderNodes, type ClusterSummary } from '../../src/k8s/cluster-run.ts';
import { deployOptions, DeployUsageError, renderManifests } from '../../src/k8s/deploy.ts';
import {
  AGENT_CLUSTER_RULES, AGENT_GRACE_SECONDS, AGENT_NAMESPACED_RULES, AGENT_OLD_SPACE_MB, AGENT_SEMI_SPACE_MB, DEFAULT_CAPS, DEFAULT_DEPLOY, HOST_PATHS, labelValue, manifests, VERSION_LABEL,
} from '../../src/k8s/manifests.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { TOOL_VERSION } from '../../src/runner/version.ts';
import { CHUNK_BYTES, pack, resultObject, unpack, unpackResults, uploadResults } from '../../src/k8s/results.ts';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { evaluate } from '../../src/runner/evaluate.ts';
import { captured } from '../runner/evaluate-helpers.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-unit-'));

test('@kubernetes/client-node loads on this Node (the 2.x line needs Node >= 22.19)', async () => {
  const k8s = await import('@kubernetes/client-node');
  assert.equal(typeof k8s.KubeConfig, 'function');
  const version = JSON.parse(fs.readFileSync(new URL('../../node_modules/@kubernetes/client-node/package.json', import.meta.url), 'utf8')).version;
  assert.match(version, /^1\./, `client-node ${version}: 2.x crashes at import under Node 20`);
});

test('deploy prints every object, and the printed YAML reads back as the same objects', () => {
  const text = renderManifests(DEFAULT_DEPLOY);
  const back = loadAllYaml(text) as { kind: string; metadata: { name: string } }[];
  assert.deepEqual(back.map((o) => o.kind), ['CustomResourceDefinition', 'CustomResourceDefinition', 'Namespace', 'PriorityClass', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'DaemonSet']);
  // the wire form, not the client's TypeScript field names
  assert.doesNotMatch(text, /x_kubernetes|_enum|_ref\b/);
});

test('the DaemonSet: hostPID, capabilities instead of privileged, read-only host paths, every node tolerated', () => {
  const ds = manifests({ ...DEFAULT_DEPLOY, image: 'example/gr:1', pullPolicy: 'Never' }).find((o) => o.kind === 'DaemonSet') as any;
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];
  assert.equal(pod.hostPID, true);
  assert.equal(c.securityContext.privileged, false);
  assert.deepEqual(c.securityContext.capabilities.add, DEFAULT_CAPS);
  assert.deepEqual(DEFAULT_CAPS, ['BPF', 'PERFMON', 'SYS_ADMIN', 'SYS_PTRACE', 'NET_RAW', 'NET_ADMIN']);
  assert.equal(c.image, 'example/gr:1');
  assert.equal(c.imagePullPolicy, 'Never');
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
  for (const p of ['/sys/fs/cgroup', '/sys/kernel/tracing', '/sys/fs/bpf', '/proc', '/run']) {
    const v = pod.volumes.find((v: any) => v.hostPath?.path === p);
    assert.ok(v, `host path ${p}`);
    assert.equal(c.volumeMounts.find((m: any) => m.name === v.name).readOnly, true, `${p} read-only`);
  }
  assert.equal(HOST_PATHS.length, 5);
  // no /sys/kernel/btf hostPath: a node without BTF would fail the pod (the container's sysfs shows it where there is one)
  assert.ok(!pod.volumes.some((v: any) => v.hostPath?.path?.startsWith('/sys/kernel/btf')));
  // limits the agent fits in, and what it tells runs about them
  assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  assert.deepEqual(c.command.slice(-4), ['--limit-ring', '64MiB', '--limit-output', '1GiB']);
  assert.equal(pod.volumes.find((v: any) => v.name === 'work').emptyDir.sizeLimit, '2Gi');
  assert.equal(pod.priorityClassName, 'gadget-run-agent');
  assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  assert.deepEqual(c.env[0], { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
});

test('upgrades: the pods carry their version (not in the immutable selector), a grace the stop budget fits in, and a capped V8 heap', () => {
  const ds = manifests().find((o) => o.kind === 'DaemonSet') as any;
  const template = ds.spec.template;
  assert.equal(template.metadata.labels[VERSION_LABEL], TOOL_VERSION);
  assert.ok(!(VERSION_LABEL in ds.spec.selector.matchLabels), 'a new version is a new revision of the same DaemonSet');
  assert.equal(template.spec.terminationGracePeriodSeconds, AGENT_GRACE_SECONDS);
  const command: string[] = template.spec.containers[0].command;
  assert.deepEqual(command.slice(0, 3), ['/usr/bin/node', `--max-semi-space-size=${AGENT_SEMI_SPACE_MB}`, `--max-old-space-size=${AGENT_OLD_SPACE_MB}`]);
  // the heap cap, both semi-spaces and the ring fit in the container's memory limit with room for node itself and the spool's page cache
  const limitMb = 512;
  assert.equal(template.spec.containers[0].resources.limits.memory, `${limitMb}Mi`);
  assert.ok(AGENT_OLD_SPACE_MB + 3 * AGENT_SEMI_SPACE_MB + 64 < limitMb / 2);
  assert.equal(labelValue('1.2.0+build.7'), '1.2.0_build.7');
  assert.equal(labelValue('-v1-'), 'v1');
  assert.equal(labelValue('x'.repeat(80)).length, 63);
});

test('markReplaced: a run its agent\'s SIGTERM stopped says why in its steps and metas, and the merge names the node', async () => {
  const dir = tmp();
  captured(path.join(dir, 'old'), { s: [{ pid: 1 }], done: [{ pid: 2 }] }, ['pid'], { s: { status: 'interrupted', ended: 'interrupted' } });
  captured(path.join(dir, 'new'), { s: [{ pid: 3 }], done: [{ pid: 4 }] }, ['pid']);
  const summary = { steps: [{ id: 's', status: 'interrupted' }, { id: 'done', status: 'ok' }] } as unknown as Summary;
  markReplaced(path.join(dir, 'old'), summary);
  assert.equal(summary.steps[0].reason, AGENT_REPLACED);
  assert.equal(summary.steps[1].reason, undefined, 'a step that had ended is whole');
  const loaded = parseRecipe('name: m\nduration: 1s\nsteps:\n  - id: s\n    gadget: trace/exec\n  - id: done\n    gadget: trace/exec\n', 'm.yaml');
  await mergeRaw(loaded, dir, ['old', 'new']);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'raw', 's.meta.json'), 'utf8'));
  assert.equal(meta.status, 'interrupted');
  assert.equal(meta.events, 2, 'what the replaced agent captured is merged, not lost');
  assert.equal(meta.reason, `old: interrupted (${AGENT_REPLACED})`);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'raw', 'done.meta.json'), 'utf8')).reason, undefined);
});

test('--caps replaces the capability list (SYS_RESOURCE only when asked), bad names and pull policies are refused', () => {
  assert.deepEqual(deployOptions({ caps: 'bpf,CAP_PERFMON,SYS_RESOURCE' }).caps, ['BPF', 'PERFMON', 'SYS_RESOURCE']);
  assert.ok(!DEFAULT_CAPS.includes('SYS_RESOURCE'));
  assert.throws(() => deployOptions({ caps: 'BPF,rm -rf' }), DeployUsageError);
  assert.throws(() => deployOptions({ 'pull-policy': 'Sometimes' }), /one of Always, IfNotPresent, Never/);
});

test('RBAC: no wildcard, no secrets, only the verbs the agent calls', () => {
  const rules = [...AGENT_NAMESPACED_RULES, ...AGENT_CLUSTER_RULES];
  for (const r of rules) {
    assert.ok(!r.verbs.includes('*') && !r.resources?.includes('*') && !r.apiGroups?.includes('*'), JSON.stringify(r));
    assert.ok(!r.resources?.includes('secrets'));
  }
  const flat = rules.flatMap((r) => r.resources!.flatMap((res) => r.verbs.map((v) => `${v} ${res}`))).sort();
  assert.deepEqual(flat, ['create configmaps', 'create gadgetrunnodes', 'get gadgetrunnodes', 'get jobs', 'get replicasets', 'list gadgetruns', 'list pods', 'patch gadgetrunnodes', 'watch gadgetruns', 'watch pods']);
});

/** pack into memory (the upload's chunks, joined) */
async function packed(dir: string, maxBytes?: number) {
  const members: Buffer[] = [];
  const outcome = await pack(dir, (m) => void members.push(m), maxBytes);
  return { gz: Buffer.concat(members), outcome };
}

test('results: pack and unpack keep every file byte for byte; an entry cannot leave the folder', async () => {
  const src = tmp();
  fs.mkdirSync(path.join(src, 'raw'));
  // more than one block: a raw file goes in records of whole events
  fs.writeFileSync(path.join(src, 'raw', 'a.ndjson'), '{"x":1}\n'.repeat(100_000) + '{"last":"no newline"}');
  fs.writeFileSync(path.join(src, 'summary.json'), '{}');
  fs.writeFileSync(path.join(src, 'bin'), Buffer.concat([Buffer.from([0, 10, 255, 0]), Buffer.alloc(600 * 1024, 7)]));
  fs.writeFileSync(path.join(src, 'empty'), '');
  fs.mkdirSync(path.join(src, '.capture-x'));
  fs.writeFileSync(path.join(src, '.capture-x', 'spool'), 'staging is not a result');
  const dst = tmp();
  const { gz, outcome } = await packed(src);
  assert.deepEqual(outcome.cut, []);
  assert.equal(outcome.bytes, gz.length);
  assert.deepEqual((await unpack(Readable.from([gz]), dst)).sort(), ['bin', 'empty', 'raw/a.ndjson', 'summary.json']);
  for (const f of ['bin', 'empty', 'raw/a.ndjson', 'summary.json']) assert.deepEqual(fs.readFileSync(path.join(dst, f)), fs.readFileSync(path.join(src, f)), f);
  const evil = Buffer.from('../escape\u00003\nabc');
  await assert.rejects(unpack(Readable.from([zlib.gzipSync(evil)]), dst), /refusing the entry/);
  await assert.rejects(unpack(Readable.from([gz.subarray(0, gz.length - 100)]), tmp()), /unexpected end of file|truncated pack/);
});

test('results: past cluster.max_result_bytes a node’s events are cut at an event boundary, its step truncated with what to do, and nothing more is uploaded', async () => {
  const src = tmp();
  // random hex: it barely compresses, so 4 MB of events cannot fit in 1 MiB
  const lines = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ i, data: crypto.randomBytes(100).toString('hex') }) + '\n');
  captured(src, { s: [], t: [{ pid: 1 }] }, ['i', 'data']);
  fs.writeFileSync(path.join(src, 'raw', 's.ndjson'), lines.join(''));
  const meta = JSON.parse(fs.readFileSync(path.join(src, 'raw', 's.meta.json'), 'utf8'));
  fs.writeFileSync(path.join(src, 'raw', 's.meta.json'), JSON.stringify({ ...meta, events: lines.length }));
  fs.writeFileSync(path.join(src, 'big.csv'), crypto.randomBytes(2 * 1024 * 1024));
  fs.writeFileSync(path.join(src, 'summary.json'), '{}');
  const cap = 1024 * 1024;
  const { gz, outcome } = await packed(src, cap);
  assert.ok(gz.length <= cap, `${gz.length} bytes > ${cap}`);
  assert.equal(outcome.cut.length, 1);
  const [cut] = outcome.cut;
  assert.equal(cut.step, 's');
  assert.equal(cut.kept + cut.dropped, lines.length);
  assert.ok(cut.kept > 1000, `only ${cut.kept} events kept: the cap should be nearly used`);
  assert.ok(gz.length > cap * 0.9, `${gz.length} of ${cap} used`);
  assert.deepEqual(outcome.skipped, ['big.csv']);
  const dst = tmp();
  await unpack(Readable.from([gz]), dst);
  // cut at an event boundary: the events kept are the first ones, whole
  assert.equal(fs.readFileSync(path.join(dst, 'raw', 's.ndjson'), 'utf8'), lines.slice(0, cut.kept).join(''));
  assert.equal(fs.readFileSync(path.join(dst, 'raw', 't.ndjson'), 'utf8'), '{"pid":1}\n', 'a later step’s small file still fits');
  const got = JSON.parse(fs.readFileSync(path.join(dst, 'raw', 's.meta.json'), 'utf8'));
  assert.equal(got.status, 'truncated');
  assert.equal(got.events, cut.kept);
  assert.equal(got.truncated, cut.dropped);
  assert.match(got.reason, /reached cluster\.max_result_bytes \(1MiB compressed in the API server\): \d+ of 20000 events were not uploaded — narrow the step's filters or containers, shorten the run, or raise cluster\.max_result_bytes/);
  assert.ok(fs.existsSync(path.join(dst, 'summary.json')));
  assert.ok(!fs.existsSync(path.join(dst, 'big.csv')));
  // the merge of that node fails the run as a local truncation does
  const loaded = parseRecipe('name: m\nduration: 1s\nsteps:\n  - id: s\n    gadget: trace/exec\n  - id: t\n    gadget: trace/exec\n', 'm.yaml');
  const dir = tmp();
  fs.renameSync(dst, path.join(dir, 'n1'));
  await mergeRaw(loaded, dir, ['n1']);
  const ev = await evaluate(loaded.recipe, dir);
  assert.equal(ev.steps[0].status, 'truncated');
  assert.match(ev.steps[0].reason!, /^n1: truncated \(the node's result reached cluster\.max_result_bytes/);
});

test('results: cluster.max_result_bytes is a size of at least 1MiB', () => {
  const recipe = (v: string) => `name: c\nduration: 1s\ncluster: {max_result_bytes: ${v}}\nsteps:\n  - id: s\n    gadget: trace/exec\n`;
  assert.equal(parseRecipe(recipe('64MiB'), 'c.yaml').recipe.cluster?.max_result_bytes, '64MiB');
  assert.throws(() => parseRecipe(recipe('512KiB'), 'c.yaml'), /c\.yaml:3:\d+ cluster\.max_result_bytes: 512KiB cannot hold .* give at least 1MiB/);
  assert.throws(() => parseRecipe(recipe('lots'), 'c.yaml'), /cluster\.max_result_bytes/);
});

test('mergeRaw: the merge holds every node that ran, sums counts, names the nodes that did not, and evaluates', async () => {
  const dir = tmp();
  for (const [node, pids] of [['a', [1, 2]], ['b', [3]]] as const) {
    captured(path.join(dir, node), { s: pids.map((pid) => ({ pid })) }, ['pid'], { s: { lost: 1 } });
  }
  captured(path.join(dir, 'c'), { s: null }, ['pid'], { s: { status: 'failed', reason: 'no BPF object' } });
  const text = 'name: m\nduration: 1s\nsteps:\n  - id: s\n    gadget: trace/exec\n    outputs: [all.csv]\nassertions:\n  - name: two nodes\n    expr: "$count($distinct(steps.s.node)) = 2"\n';
  const loaded = parseRecipe(text, 'm.yaml');
  await mergeRaw(loaded, dir, ['a', 'b', 'c']);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'raw', 's.meta.json'), 'utf8'));
  assert.equal(meta.events, 3);
  assert.equal(meta.lost, 2);
  assert.equal(meta.status, 'ok');
  assert.match(meta.reason, /^c: failed \(no BPF object\)$/);
  const ev = await evaluate(loaded.recipe, dir);
  assert.equal(ev.assertions[0].status, 'passed', ev.assertions[0].message);
  assert.equal(fs.readFileSync(path.join(dir, 'all.csv'), 'utf8').trim().split('\n')[0], 'pid,node');
});

test('scopeToNode: the run’s selection becomes every container-capable step’s kernel selection, narrowed by the step’s own; network policies are the selection’s documents over the whole node', () => {
  const text = `name: s
duration: 1s
run: sleep 1
steps:
  - id: cpu
    gadget: profile/cpu
  - id: syscalls
    gadget: advise/seccomp-profile
  - id: np
    gadget: advise/network-policy
  - id: np_own
    gadget: advise/network-policy
    containers: {pod: web-0}
  - id: blk
    gadget: profile/block-io
  - id: execs
    gadget: trace/exec
  - id: opens
    gadget: trace/open
    containers: {labels: {tier: front}, image: nginx}
  - id: socks
    gadget: snapshot/socket
`;
  const source = { name: 'pods', enrich() {} };
  const loaded = parseRecipe(text, 's.yaml');
  const scoped = scopeToNode(loaded, { namespace: 'shop', labels: { app: 'web' } }, [source]);
  const by = Object.fromEntries(scoped.steps.map((s) => [s.spec.id, s.containers]));
  const docs = Object.fromEntries(scoped.steps.map((s) => [s.spec.id, s.documents]));
  const selection = { namespace: 'shop', labels: { app: 'web' } };
  // events without cgroup_id (a profile's stacks, a syscall bitmap) are still the selected containers'
  for (const id of ['execs', 'cpu', 'syscalls']) assert.deepEqual(by[id], { selection, workload: false, sources: [source] }, id);
  // the node is recorded (not even the workload's cgroup alone), the policies are the selection's
  assert.deepEqual([by.np, docs.np], [undefined, selection]);
  assert.deepEqual([by.np_own, docs.np_own], [undefined, { pod: 'web-0', ...selection }]);
  assert.deepEqual([by.blk, docs.blk], [loaded.steps.find((s) => s.spec.id === 'blk')!.containers, undefined], 'node-wide: as the recipe planned it');
  assert.deepEqual(by.opens, { selection: { image: 'nginx', namespace: 'shop', labels: { tier: 'front', app: 'web' } }, workload: false, sources: [source] });
  assert.deepEqual(by.socks, loaded.steps.find((s) => s.spec.id === 'socks')!.containers, 'one network namespace\'s sockets: node-wide');
  // no selection: steps keep their scope (the workload's), scoped ones gain the pods
  const plain = scopeToNode(loaded, undefined, [source]);
  const plainBy = Object.fromEntries(plain.steps.map((s) => [s.spec.id, s.containers]));
  assert.deepEqual(plainBy.execs, { workload: true, sources: [source] });
  assert.deepEqual(plainBy.opens, { selection: { labels: { tier: 'front' }, image: 'nginx' }, workload: false, sources: [source] });
  assert.deepEqual([plainBy.np_own, plain.steps.find((s) => s.spec.id === 'np_own')!.documents], [undefined, { pod: 'web-0' }]);
  assert.deepEqual(loaded.steps[0].containers, { workload: true }, 'the loaded recipe is not changed');
});

test('a merged evaluation: a node’s events gain their container’s fields and node once, and those of a container the node resolved out are dropped', async () => {
  const dir = tmp();
  const nodeDir = path.join(dir, 'n1');
  captured(nodeDir, { s: [{ cgroup_id: 7, pid: 1 }, { cgroup_id: 8, pid: 2 }, { cgroup_id: 9, pid: 3 }], t: [{ pid: 4 }] }, ['pid', 'cgroup_id']);
  const table: ContainerTable = {
    containers: [
      { id: 'a'.repeat(64), runtime: 'containerd', cgroupId: '7', cgroupPath: '/kubepods/x', name: 'web', k8s: { node: 'n1', namespace: 'shop', pod: 'web-1', container: 'web', labels: { app: 'web' } } },
      { id: 'b'.repeat(64), runtime: 'containerd', cgroupId: '8', cgroupPath: '/kubepods/y', name: 'db' },
    ],
    steps: { s: { selected: ['7'], rejected: ['8'] } },
  };
  fs.writeFileSync(path.join(nodeDir, 'raw', CONTAINERS_FILE), JSON.stringify(table));
  const raw = fs.readFileSync(path.join(nodeDir, 'raw', 's.ndjson'), 'utf8');
  const loaded = parseRecipe('name: j\nduration: 1s\nsteps:\n  - id: s\n    gadget: trace/exec\n    outputs: [s.ndjson, s.csv]\n  - id: t\n    gadget: trace/exec\n    outputs: [t.ndjson]\n', 'j.yaml');
  await mergeRaw(loaded, dir, ['n1']);
  assert.equal(fs.readFileSync(path.join(dir, 'raw', 's.ndjson'), 'utf8'), raw, 'the merge is the node’s bytes as captured');
  const ev = await evaluateAgain(loaded.recipe, dir, { log: () => {} });
  assert.equal(ev.steps[0].events, 2);
  const lines = fs.readFileSync(path.join(dir, 's.ndjson'), 'utf8').trim().split('\n');
  const events = lines.map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.pid), [1, 3], 'the rejected container’s PENDING event is gone');
  assert.equal(events[0].pod, 'web-1');
  assert.deepEqual(events[0].labels, { app: 'web' });
  assert.deepEqual(events.map((e) => e.node), ['n1', 'n1']);
  assert.equal(lines[0].match(/"node":/g)?.length, 1, lines[0]);
  assert.equal(events[1].pod, undefined);
  assert.deepEqual(fs.readFileSync(path.join(dir, 't.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)), [{ pid: 4, node: 'n1' }]);
  assert.ok(fs.readFileSync(path.join(dir, 's.csv'), 'utf8').split('\n')[0].split(',').includes('pod'));
  // evaluating the merged folder again gives the same events: raw/ is never rewritten
  await evaluateAgain(loaded.recipe, dir, { log: () => {} });
  assert.deepEqual(fs.readFileSync(path.join(dir, 's.ndjson'), 'utf8').trim().split('\n'), lines);
});

/** An API error as @kubernetes/client-node throws it: the HTTP code and the server's Status body. */
const apiError = (code: number | undefined, reason?: string) =>
  Object.assign(new Error(`HTTP ${code}`), code === undefined ? {} : { code, body: JSON.stringify({ kind: 'Status', code, reason, message: reason }) });

function offlineApi(): Api {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return new Api(kc);
}

test('retryable: a busy or unreachable API server and Conflict are retried; answers (404, 422, AlreadyExists) are not', () => {
  for (const e of [apiError(504, 'Timeout'), apiError(500), apiError(503), apiError(429, 'TooManyRequests'), apiError(409, 'Conflict'), apiError(undefined)]) assert.equal(retryable(e), true, e.message);
  for (const e of [apiError(404, 'NotFound'), apiError(422, 'Invalid'), apiError(403, 'Forbidden'), apiError(409, 'AlreadyExists')]) assert.equal(retryable(e), false, e.message);
});

test('withRetry: counts every attempt, backs off with jitter under a doubling ceiling, stops at the first answer', async () => {
  const api = offlineApi();
  const delays: number[] = [];
  const opts = { attempts: 6, baseMs: 100, maxMs: 300, sleep: async (ms: number) => void delays.push(ms) };
  const failures = [apiError(504, 'Timeout'), apiError(429), apiError(undefined), apiError(409, 'Conflict')];
  const got = await withRetry(api, 'patch gadgetruns/status', async () => {
    const e = failures.shift();
    if (e) throw e;
    return 'ok';
  }, opts);
  assert.equal(got, 'ok');
  assert.equal(api.calls.get('patch gadgetruns/status'), 5);
  assert.equal(delays.length, 4);
  delays.forEach((d, i) => assert.ok(d >= 0 && d <= Math.min(300, 100 * 2 ** i), `delay ${i}: ${d}`));
  // an answer is final
  await assert.rejects(withRetry(api, 'create configmaps', async () => { throw apiError(409, 'AlreadyExists'); }, opts), /409/);
  assert.equal(api.calls.get('create configmaps'), 1);
  // and a busy server is given up on after `attempts`
  await assert.rejects(withRetry(api, 'list configmaps', async () => { throw apiError(504); }, opts), /504/);
  assert.equal(api.calls.get('list configmaps'), 6);
  // a value overtaken by a newer one stops retrying
  let superseded = false;
  await assert.rejects(withRetry(api, 'get x', async () => { superseded = true; throw apiError(503); }, { ...opts, until: () => superseded }), /503/);
  assert.equal(api.calls.get('get x'), 1);
});

test('Latest: one send at a time; values set meanwhile collapse to the newest; a superseded failure is not reported', async () => {
  const sent: string[] = [];
  const gates: (() => void)[] = [];
  const latest = new Latest<string>(async (v, superseded) => {
    sent.push(v);
    await new Promise<void>((r) => gates.push(r));
    if (v === 'Running' && superseded()) throw new Error('504 while a newer value waits');
  });
  const running = latest.set('Running');
  const mid = latest.set('Uploading');
  const final = latest.set('Succeeded');
  assert.deepEqual(sent, ['Running']);
  gates.shift()!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, ['Running', 'Succeeded']);
  gates.shift()!();
  await Promise.all([running, mid, final]);
  assert.deepEqual(sent, ['Running', 'Succeeded']);
  // drained: the next value is sent at once, and its own failure is reported
  const failing = new Latest<string>(async () => { throw new Error('refused'); });
  await assert.rejects(failing.set('x'), /refused/);
});

test('a node\'s answer is small: phase, status, a cut message; both CRDs prune anything else', () => {
  const long = 'x'.repeat(5000);
  const entry = nodeStatus({ phase: 'Failed', status: 'error', message: long, ...({ steps: [{ id: 's' }], pods: ['a/b'], apiCalls: { 'patch gadgetruns/status': 2 } } as object) });
  assert.deepEqual(Object.keys(entry), ['phase', 'status', 'message']);
  assert.equal(entry.message!.length, MESSAGE_MAX);
  const schema = (gadgetRunCrd().spec.versions[0].schema!.openAPIV3Schema as any).properties.status.properties.nodes.additionalProperties;
  assert.equal(schema['x-kubernetes-preserve-unknown-fields'], undefined);
  assert.deepEqual(Object.keys(schema.properties), ['phase', 'status', 'message']);
  assert.equal(schema.properties.message.maxLength, MESSAGE_MAX);
  // the answer object of this release: the same three fields, serialised as the API server reads them
  const node = YAML.parse(dumpYaml(gadgetRunNodeCrd())).spec.versions[0].schema.openAPIV3Schema.properties.status;
  assert.deepEqual(Object.keys(node.properties), ['phase', 'status', 'message']);
  assert.deepEqual(node.properties.phase.enum, ['Running', 'Succeeded', 'Failed', 'Cancelled']);
  assert.equal(node.properties.message.maxLength, MESSAGE_MAX);
  assert.equal(node['x-kubernetes-preserve-unknown-fields'], undefined);
});

test('a node\'s answer object: named after its run and node (a long node name by its hash), owned by the run, labelled for the CLI\'s watch', () => {
  const run = { apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', metadata: { name: 'scale-abc', namespace: 'team-a', uid: 'u1' }, spec: { recipe: 'x' } } as GadgetRun;
  const o = nodeObject(run, 'sim-001', { phase: 'Running' });
  assert.equal(o.metadata.name, 'scale-abc-sim-001');
  assert.equal(o.metadata.namespace, 'team-a');
  assert.deepEqual(o.metadata.labels, { 'gadget-run.dev/run': 'scale-abc', 'gadget-run.dev/node': 'sim-001' });
  assert.deepEqual(o.metadata.ownerReferences, [{ apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', name: 'scale-abc', uid: 'u1' }]);
  assert.deepEqual(o.spec, { run: 'scale-abc', node: 'sim-001' });
  const long = `n${'x'.repeat(100)}.example.com`;
  const named = nodeObject(run, long, { phase: 'Running' });
  assert.ok(named.metadata.name.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(named.metadata.name), named.metadata.name);
  assert.equal(named.metadata.labels!['gadget-run.dev/node'].length, 63);
  assert.equal(named.spec.node, long);
});

test('reportJitterMs: a node\'s answer waits up to 5 ms per node of the run, at most 2.5 s', () => {
  assert.equal(reportJitterMs(1, () => 0.999_999), 5);
  assert.equal(reportJitterMs(50, () => 1), 250);
  assert.equal(reportJitterMs(500, () => 1), 2500);
  assert.equal(reportJitterMs(5000, () => 1), 2500);
  assert.equal(reportJitterMs(500, () => 0), 0);
  assert.equal(reportJitterMs(0, () => 1), 0, 'a run that names no nodes: no wait');
});

test('callsSince: the requests of one run by verb, plus the ones about to go out', () => {
  const before = new Map([['list gadgetruns', 1], ['patch gadgetruns/status', 4]]);
  const now = new Map([['list gadgetruns', 1], ['patch gadgetruns/status', 5], ['list pods', 1]]);
  assert.deepEqual(callsSince(before, now, ['create configmaps', 'patch gadgetruns/status']), { 'patch gadgetruns/status': 2, 'list pods': 1, 'create configmaps': 1 });
});

test('unpackResults: whole nodes unpack with their report; a node missing a chunk is an error, not the end of the merge; what each left in the API server is counted', async () => {
  const run = { apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', metadata: { name: 'r', uid: 'u' }, spec: { recipe: 'x' } } as const;
  const src = tmp();
  fs.mkdirSync(path.join(src, 'raw'));
  fs.writeFileSync(path.join(src, 'raw', 's.ndjson'), '{"node":"a"}\n');
  const { gz } = await packed(src);
  const report = (node: string) => ({ node, phase: 'Succeeded' as const, startedAt: 't', apiCalls: { 'patch gadgetruns/status': 2 } });
  // a: whole; b: two chunks, chunk 0 (with the report) never written; c: a report and no results; d: chunk 1 of 3 lost
  const big = crypto.randomBytes(CHUNK_BYTES * 2 + 10);
  const items = [
    resultObject(run, 'a', 0, 1, gz, report('a')),
    resultObject(run, 'b', 1, undefined, big.subarray(CHUNK_BYTES, 2 * CHUNK_BYTES)),
    resultObject(run, 'c', 0, 0, undefined, report('c')),
    resultObject(run, 'd', 2, undefined, big.subarray(2 * CHUNK_BYTES)),
    resultObject(run, 'd', 0, 3, big.subarray(0, CHUNK_BYTES), report('d')),
  ];
  const dir = tmp();
  const got = await unpackResults(items, dir);
  assert.deepEqual(got.get('a')!.files, ['raw/s.ndjson']);
  assert.equal(got.get('a')!.report!.apiCalls!['patch gadgetruns/status'], 2);
  assert.equal(fs.readFileSync(path.join(dir, 'a', 'raw', 's.ndjson'), 'utf8'), '{"node":"a"}\n');
  assert.match(got.get('b')!.error!, /1 of an unknown number of result chunks found and no report/);
  assert.equal(got.get('b')!.files, undefined);
  assert.deepEqual(got.get('c'), { report: report('c'), configMaps: 1, storedBytes: JSON.stringify(report('c')).length });
  assert.match(got.get('d')!.error!, /2 of 3 result chunks found: the node's upload did not finish/);
  assert.equal(got.get('d')!.configMaps, 2);
  assert.equal(got.get('a')!.storedBytes, gz.toString('base64').length + JSON.stringify(report('a')).length);
  assert.deepEqual(apiServerUse(got), { configMaps: 5, bytes: [...got.values()].reduce((n, d) => n + d.storedBytes, 0) });
  // the joined chunks were on disk only while unpacking
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.')), []);
});

test('uploadResults: chunks go up as they fill, chunk 0 last with the count and the report; the CLI joins them back', async () => {
  const run = { apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', metadata: { name: 'r', uid: 'u' }, spec: { recipe: 'x' } } as const;
  const src = tmp();
  captured(src, { s: [] }, ['data']);
  // ~1.7 MB compressed: four chunks
  fs.writeFileSync(path.join(src, 'raw', 's.ndjson'), Array.from({ length: 16000 }, () => JSON.stringify({ data: crypto.randomBytes(100).toString('hex') }) + '\n').join(''));
  const created: V1ConfigMap[] = [];
  const api = offlineApi();
  (api as { core: unknown }).core = { createNamespacedConfigMap: async ({ body }: { body: V1ConfigMap }) => void created.push(body) };
  const written = await uploadResults(api, run, 'n1', src, (w) => ({ node: 'n1', phase: 'Succeeded', startedAt: 't', chunks: w.chunks }));
  assert.ok(written.chunks >= 3, `${written.chunks} chunks`);
  assert.deepEqual(created.map((c) => c.metadata!.annotations!['gadget-run.dev/chunk']), [...Array.from({ length: written.chunks - 1 }, (_, i) => `${i + 1}`), `0/${written.chunks}`]);
  assert.equal(JSON.parse(created.at(-1)!.data!['result.json']).chunks, written.chunks);
  const dir = tmp();
  const got = await unpackResults([...created].reverse(), dir);
  assert.equal(got.get('n1')!.error, undefined);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'n1', 'raw', 's.ndjson')), fs.readFileSync(path.join(src, 'raw', 's.ndjson')));
});

test('renderNodes: each node’s ConfigMaps and bytes, a node cut at the cap, and what the run left in the API server', () => {
  const summary = { cluster: { nodes: [
    { node: 'a', phase: 'Succeeded', status: 'passed', configMaps: 3, storedBytes: 1_500_000 },
    { node: 'b', phase: 'Succeeded', status: 'passed', configMaps: 33, storedBytes: 22_000_000, truncated: ['execs'] },
  ], apiServer: { configMaps: 36, bytes: 23_500_000 } } } as unknown as ClusterSummary;
  const text = renderNodes(summary);
  assert.match(text, /a: Succeeded \(passed\), 3 ConfigMaps 1\.4 MiB/);
  assert.match(text, /b: Succeeded \(passed\), 33 ConfigMaps 21\.0 MiB, cut at cluster\.max_result_bytes: execs truncated/);
  assert.match(text, /left in the API server until the GadgetRun is deleted: 36 ConfigMaps, 22\.4 MiB/);
});

test('deploy --run-namespace: the agent’s own rules in each team namespace, nothing cluster-wide added, and the agent told where to watch', () => {
  const objs = manifests(deployOptions({ 'run-namespace': ['team-a,team-b', 'team-a'] })) as any[];
  const roles = objs.filter((o) => o.kind === 'Role');
  assert.deepEqual(roles.map((r) => r.metadata.namespace), ['gadget', 'team-a', 'team-b']);
  for (const r of roles) assert.deepEqual(r.rules, AGENT_NAMESPACED_RULES);
  const bindings = objs.filter((o) => o.kind === 'RoleBinding');
  assert.deepEqual(bindings.map((b) => [b.metadata.namespace, b.subjects[0].namespace]), [['gadget', 'gadget'], ['team-a', 'gadget'], ['team-b', 'gadget']]);
  assert.deepEqual(objs.find((o) => o.kind === 'ClusterRole').rules, AGENT_CLUSTER_RULES);
  const env = objs.find((o) => o.kind === 'DaemonSet').spec.template.spec.containers[0].env;
  assert.deepEqual(env.find((e: any) => e.name === 'GADGET_RUN_NAMESPACES'), { name: 'GADGET_RUN_NAMESPACES', value: 'gadget,team-a,team-b' });
  assert.throws(() => deployOptions({ 'run-namespace': ['Team_A'] }), /not namespace names: Team_A/);
  // without it: no such variable, one Role
  assert.ok(!(manifests() as any[]).find((o) => o.kind === 'DaemonSet').spec.template.spec.containers[0].env.some((e: any) => e.name === 'GADGET_RUN_NAMESPACES'));
});

test('a node\'s answer: created first, then patched; a create that already landed (409) is patched, a patch of an object gone (404) is created; answers set meanwhile collapse to the newest', async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const sent: string[] = [];
  const answers: (Error & { code?: number; body?: string })[] = [];
  const fail = (code: number, reason: string) => Object.assign(new Error(reason), { code, body: JSON.stringify({ reason }) });
  const api = new Api(kc);
  const respond = async (what: string, body: unknown) => {
    sent.push(`${what} ${JSON.stringify((body as { status?: unknown }).status)}`);
    const next = answers.shift();
    if (next) throw next;
    return {};
  };
  Object.assign(api.custom, {
    createNamespacedCustomObject: (p: { plural: string; body: GadgetRunNode }) => {
      assert.equal(p.plural, 'gadgetrunnodes');
      assert.equal(p.body.metadata.name, 'r1-n1');
      return respond('create', p.body);
    },
    patchNamespacedCustomObject: (p: { plural: string; name: string; body: unknown }) => {
      assert.deepEqual([p.plural, p.name], ['gadgetrunnodes', 'r1-n1']);
      return respond('patch', p.body);
    },
  });
  const agent = new Agent({ node: 'n1', objectDir: '/nonexistent', fake: true, workDir: os.tmpdir(), log: () => {} }, api) as unknown as { report(run: GadgetRun, r: NodeResult): Promise<void>; reporters: Map<string, unknown> };
  const run = (uid: string) => ({ apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', metadata: { name: 'r1', namespace: 'gadget', uid }, spec: { recipe: 'x' } }) as GadgetRun;

  // the usual: Running created, the final phase patched
  await agent.report(run('a'), { phase: 'Running' });
  await agent.report(run('a'), { phase: 'Succeeded', status: 'passed' });
  assert.deepEqual(sent.splice(0), ['create {"phase":"Running"}', 'patch {"phase":"Succeeded","status":"passed"}']);

  // a create whose first attempt landed after all: the retry's 409 AlreadyExists becomes a patch
  answers.push(fail(409, 'AlreadyExists'));
  await agent.report(run('b'), { phase: 'Failed', message: 'm' });
  assert.deepEqual(sent.splice(0), ['create {"phase":"Failed","message":"m"}', 'patch {"phase":"Failed","message":"m"}']);

  // a patch of an answer that is gone (deleted by hand) creates it again
  await agent.report(run('c'), { phase: 'Running' });
  answers.push(fail(404, 'NotFound'));
  await agent.report(run('c'), { phase: 'Cancelled' });
  assert.deepEqual(sent.splice(0), ['create {"phase":"Running"}', 'patch {"phase":"Cancelled"}', 'create {"phase":"Cancelled"}']);

  // any other refusal is the caller's to see, and the next answer tries the create again
  answers.push(fail(403, 'Forbidden'));
  await assert.rejects(agent.report(run('d'), { phase: 'Running' }), /Forbidden/);
  await agent.report(run('d'), { phase: 'Succeeded' });
  assert.deepEqual(sent.splice(0), ['create {"phase":"Running"}', 'create {"phase":"Succeeded"}']);

  // answers set while one is on its way collapse to the newest: the superseded one never goes out
  let release!: () => void;
  answers.length = 0;
  const slow = new Promise<void>((r) => (release = r));
  const realCreate = api.custom.createNamespacedCustomObject;
  let first = true;
  Object.assign(api.custom, {
    createNamespacedCustomObject: async (p: { plural: string; body: GadgetRunNode }) => {
      if (first) {
        first = false;
        await slow;
      }
      return (realCreate as unknown as (p: unknown) => Promise<unknown>)(p);
    },
  });
  const a1 = agent.report(run('e'), { phase: 'Running' });
  const a2 = agent.report(run('e'), { phase: 'Failed', message: 'early' });
  const a3 = agent.report(run('e'), { phase: 'Failed', message: 'final' });
  release();
  await Promise.all([a1, a2, a3]);
  assert.deepEqual(sent.splice(0), ['create {"phase":"Running"}', 'patch {"phase":"Failed","message":"final"}'], 'the middle answer was superseded before it went out');
});
