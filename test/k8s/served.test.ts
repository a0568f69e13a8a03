/**
 * Big results bypass etcd, on the real test cluster (test/k8s/cluster.ts): the
 * DaemonSet's agent serves a result above the inline limit on its pod's loopback and
 * the CLI fetches it through the API server's port-forward of that pod, as the
 * caller. Checked: the kubelet is reached at the Node's loopback InternalIP (logs and
 * port-forward work without a hostname); a big trace/open capture goes that way and
 * leaves no result bytes in the API server (its ConfigMaps listed, and etcd's own
 * keys read); a small capture keeps the ConfigMap path; through the real port-forward
 * the agent refuses traversal, other runs, other methods and wrong tokens, serves the
 * token holder once with the sha256 its report gave, and a user without
 * pods/portforward cannot fetch at all; several nodes' results are fetched at once,
 * one unreachable agent failing only its node.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
import type { NodeReport } from '../../src/k8s/crd.ts';
import { fetchServed, portForwardSocket, tokenHash, TOKEN_HEADER } from '../../src/k8s/serve.ts';
import {
  adminConfig, clusterRun, clusterSuite, eventually, gadgetRun, kubectl, NODE, serviceAccountToken, skipK8s, startAgent, writeTokenKubeconfig,
} from './cluster.ts';
// @ts-expect-error -- a JavaScript module without types
import * as harness from '../../scripts/k8s-cluster.mjs';

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `gadget-run-k8s-${p}-`));
const summaryOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as ClusterSummary;

const suite = clusterSuite({
  deploy: true,
  cleanup: async () => {
    await kubectl(['-n', 'gadget', 'delete', 'serviceaccount', 'reader', '--ignore-not-found']);
  },
});

async function agentPod(): Promise<string> {
  const r = await kubectl(['-n', 'gadget', 'get', 'pods', '-l', 'app.kubernetes.io/name=gadget-run', '--field-selector', `spec.nodeName=${NODE}`, '-o', 'jsonpath={.items[0].metadata.name}']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** A program that opens a uniquely named file in a loop for `ms`: a big trace/open capture. */
function opener(ms: number): Promise<void> {
  const dir = tmp('opener');
  const file = path.join(dir, 'grk8sbigopen');
  fs.writeFileSync(file, 'x');
  const child = spawn(process.execPath, ['-e', `const fs=require('fs');const end=Date.now()+${ms};while(Date.now()<end){fs.closeSync(fs.openSync(${JSON.stringify(file)},'r'))}`], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('close', () => resolve()));
}

test('the kubelet serves on the Node’s loopback InternalIP, and the API server reaches it by that address (logs)', { skip: skipK8s, timeout: 120_000 }, async () => {
  const ip = await kubectl(['get', 'node', NODE, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}']);
  assert.equal(ip.stdout.trim(), harness.nodeAddress);
  assert.match(harness.nodeAddress, /^127\./);
  const kubeletConfig = fs.readFileSync(`${harness.stateDir}/kubelet.yaml`, 'utf8');
  assert.match(kubeletConfig, new RegExp(`^address: ${harness.nodeAddress.replace(/\./g, '\\.')}$`, 'm'));
  // the API server → kubelet path (the same one port-forward takes)
  const logs = await kubectl(['-n', 'gadget', 'logs', await agentPod()]);
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stderr + logs.stdout, /watching gadgetruns/);
});

test('a big capture (trace/open, default 1MiB limit) is fetched through the port-forward; no result bytes are stored in the API server or etcd', { skip: skipK8s, timeout: 300_000 }, async (t) => {
  // long enough to cover the 4 s capture after the CLI starts, attaches and the agent starts the run on a loaded machine
  const capture = opener(15000);
  const r = await clusterRun(`name: big-open
duration: 4s
allow_lost: true
steps:
  - id: opens
    gadget: trace/open
    outputs: [opens.ndjson]
assertions:
  - name: saw the opener
    expr: '$count(steps.opens[$contains(path, "grk8sbigopen")]) > 0'
`, []);
  await capture;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = summaryOf(r.out);
  const n = s.cluster.nodes[0];
  t.diagnostic(`served ${n.servedBytes} bytes; ${n.configMaps} ConfigMap(s) of ${n.storedBytes} bytes; ${s.steps[0].events} events`);
  assert.equal(n.phase, 'Succeeded');
  assert.ok((n.servedBytes ?? 0) > 1024 * 1024, `served ${n.servedBytes}`);
  assert.equal(n.configMaps, 1, 'chunk 0 alone: the report');
  assert.ok(n.storedBytes! < 16 * 1024, `stored ${n.storedBytes}`);
  assert.match(r.stderr, /fetching its .* MiB result from gadget\/.* \(port-forward\)/);
  assert.ok(fs.statSync(path.join(r.out, NODE, 'raw', 'opens.ndjson')).size > 1024 * 1024);
  // what the API server holds of the run: one ConfigMap, no binaryData
  const cms = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'configmaps', '-l', `gadget-run.dev/run=${s.cluster.run}`, '-o', 'json'])).stdout).items;
  assert.equal(cms.length, 1);
  assert.equal(cms[0].binaryData, undefined);
  const report = JSON.parse(cms[0].data['result.json']) as NodeReport;
  assert.equal(report.served!.bytes, n.servedBytes);
  assert.match(report.served!.sha256, /^[0-9a-f]{64}$/);
  // and etcd's own keys (its JSON gateway on loopback): the run's ConfigMaps are one small value
  const prefix = `/registry/configmaps/gadget/${s.cluster.run}`;
  const b64 = (x: string) => Buffer.from(x).toString('base64');
  const range = await etcdRange(b64(prefix), b64(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)));
  const kvs = (range.kvs ?? []) as { key: string; value: string }[];
  t.diagnostic(`etcd: ${kvs.map((kv) => `${Buffer.from(kv.key, 'base64')} ${Buffer.from(kv.value, 'base64').length} bytes`).join(', ')}`);
  assert.equal(kvs.length, 1);
  assert.ok(Buffer.from(kvs[0].value, 'base64').length < 16 * 1024);
  // the agent stopped serving once fetched
  const logs = await kubectl(['-n', 'gadget', 'logs', await agentPod()]);
  assert.match(logs.stderr + logs.stdout, new RegExp(`run ${s.cluster.run}: result /runs/${s.cluster.run}/${NODE}/results.gz fetched`));
});

test('several nodes’ big results are fetched at once (--fetch-concurrency) through the real port-forward, each checked; a node whose agent cannot be reached fails alone', { skip: skipK8s, timeout: 300_000 }, async (t) => {
  // simulated nodes whose agents run on this machine, each claiming the real agent's pod: the pod is
  // hostNetwork, so its port-forward reaches their servers on this loopback, through the API server and
  // the kubelet as for a real node. One claims a pod that does not exist: its fetch must fail alone.
  const pod = await agentPod();
  const sims = ['served-sim-0', 'served-sim-1', 'served-sim-2', 'served-sim-3'];
  const token = await serviceAccountToken(adminConfig());
  const agents = await Promise.all([...sims.map((n) => startAgent(n, token, ['--fake'], 120_000, { POD_NAME: pod })), startAgent('served-sim-gone', token, ['--fake'], 120_000, { POD_NAME: 'gadget-run-no-such-pod' })]);
  // execs on the real node during the run: its part of the merge must not depend on what else runs on the machine
  const execs = spawn('/bin/sh', ['-c', 'while :; do /bin/true; sleep 0.1; done'], { stdio: 'ignore' });
  try {
    const r = await clusterRun(`name: served-many
duration: 2s
cluster: {allow_missing_nodes: true}
steps:
  - id: execs
    gadget: trace/exec
`, ['--node', [...sims, 'served-sim-gone'].join(','), '--inline-limit', '0KiB', '--fetch-concurrency', '3']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = summaryOf(r.out);
    const by = new Map(s.cluster.nodes.map((n) => [n.node, n]));
    t.diagnostic(s.cluster.nodes.map((n) => `${n.node}: ${n.phase} served ${n.servedBytes ?? '-'}`).join('; '));
    for (const node of [NODE, ...sims]) {
      const n = by.get(node)!;
      assert.equal(n.phase, 'Succeeded', `${node}: ${n.message}`);
      assert.ok(n.servedBytes! > 0, `${node} fetched from its agent`);
      assert.equal(n.configMaps, 1, `${node}: its report alone in the API server`);
      assert.match(r.stderr, new RegExp(`node ${node}: fetching its .* result from gadget/${pod} \\(port-forward\\)`));
    }
    const gone = by.get('served-sim-gone')!;
    assert.equal(gone.phase, 'Failed');
    assert.match(gone.message!, /could not be fetched from its agent/);
    // every fetched node's events are in the merge
    const parts = JSON.parse(fs.readFileSync(path.join(r.out, 'raw', 'execs.meta.json'), 'utf8')).parts as { node: string }[];
    assert.deepEqual(parts.map((p) => p.node).sort(), [NODE, ...sims].sort());
  } finally {
    execs.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.stop()));
  }
});

/** etcd's v3 range through its JSON gateway (the harness's etcd listens on 127.0.0.1:23790). */
function etcdRange(key: string, rangeEnd: string): Promise<{ kvs?: unknown[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: 23790, path: '/v3/kv/range', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`etcd ${res.statusCode}: ${body}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ key, range_end: rangeEnd }));
  });
}

test('a small capture keeps the ConfigMap path, its sha256 in the report', { skip: skipK8s, timeout: 300_000 }, async () => {
  const r = await clusterRun(`name: small-exec
duration: 2s
steps:
  - id: execs
    gadget: trace/exec
`, []);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = summaryOf(r.out);
  const n = s.cluster.nodes[0];
  assert.equal(n.servedBytes, undefined);
  assert.ok(n.configMaps! >= 1);
  const cm = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'configmap', `${s.cluster.run}-${NODE}-0`, '-o', 'json'])).stdout);
  assert.ok(cm.binaryData['results.gz'].length > 0);
  assert.match((JSON.parse(cm.data['result.json']) as NodeReport).sha256!, /^[0-9a-f]{64}$/);
});

/** One request through the real port-forward of the agent's pod, as kc. */
function viaPortForward(kc: KubeConfig, pod: string, port: number, target: string, token: string | null, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      method, host: 'localhost', path: target,
      headers: { ...(token !== null ? { [TOKEN_HEADER]: token } : {}), connection: 'close' },
      createConnection: () => portForwardSocket(kc, 'gadget', pod, port) as unknown as import('node:net').Socket,
    }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('through the real port-forward: traversal, other runs, other methods and wrong tokens refused; the token holder gets it once, sha256 checked; a user without pods/portforward cannot fetch', { skip: skipK8s, timeout: 300_000 }, async () => {
  // a runbook's run with a token of the test's own, everything served (inlineLimit 0KiB)
  const token = randomBytes(32).toString('base64url');
  const name = `served-${Date.now().toString(36)}`;
  const run = {
    apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun',
    metadata: { name, namespace: 'gadget' },
    spec: { nodes: [NODE], recipe: 'name: served\nduration: 1s\nsteps: [{id: execs, gadget: trace/exec}]\n', inlineLimit: '0KiB', fetchTokenHash: tokenHash(token) },
  };
  assert.equal((await kubectl(['apply', '-f', '-'], JSON.stringify(run))).code, 0);
  const report = await eventually('the node’s report', async () => {
    const r = await kubectl(['-n', 'gadget', 'get', 'configmap', `${name}-${NODE}-0`, '-o', 'jsonpath={.data.result\\.json}']);
    return r.code === 0 && r.stdout ? (JSON.parse(r.stdout) as NodeReport) : undefined;
  }, 120_000);
  assert.equal(report.phase, 'Succeeded', report.message);
  const served = report.served!;
  assert.ok(served, 'served, not inline');
  const kc = adminConfig();
  const p = served.path;
  for (const target of [`${p}/../../../../etc/passwd`, '/runs/' + name + '/%2e%2e/%2e%2e/etc/passwd', `/runs/other-run/${NODE}/results.gz`, '/etc/passwd', `${p}?download=1`]) {
    assert.equal((await viaPortForward(kc, served.pod, served.port, target, token)).status, 404, target);
  }
  for (const method of ['POST', 'PUT', 'DELETE']) assert.equal((await viaPortForward(kc, served.pod, served.port, p, token, method)).status, 405, method);
  assert.equal((await viaPortForward(kc, served.pod, served.port, p, null)).status, 403);
  assert.equal((await viaPortForward(kc, served.pod, served.port, p, 'guess')).status, 403);
  assert.equal((await viaPortForward(kc, served.pod, served.port, p, run.spec.fetchTokenHash)).status, 403, 'the hash in the spec is not the token');

  // a reader of the gadget namespace (runs, ConfigMaps) without pods/portforward
  await kubectl(['-n', 'gadget', 'create', 'serviceaccount', 'reader']);
  await kubectl(['-n', 'gadget', 'create', 'role', 'reader', '--verb=get,list,watch', '--resource=configmaps,gadgetruns.gadget-run.dev,gadgetrunnodes.gadget-run.dev,pods']);
  await kubectl(['-n', 'gadget', 'create', 'rolebinding', 'reader', '--role=reader', '--serviceaccount=gadget:reader']);
  const can = await kubectl(['auth', 'can-i', 'get', 'pods', '--subresource=portforward', '-n', 'gadget', '--as', 'system:serviceaccount:gadget:reader']);
  assert.equal(can.stdout.trim(), 'no');
  const readerKc = new KubeConfig();
  readerKc.loadFromFile(writeTokenKubeconfig(path.join(tmp('reader'), 'kubeconfig'), await serviceAccountToken(kc, 'gadget', 'reader')));
  await assert.rejects(fetchServed(readerKc, served, token, path.join(tmp('reader-out'), 'r.gz')), /403|Forbidden|Unexpected server response/);

  // the token holder, as the admin: the whole file with the report's sha256, once
  const file = path.join(tmp('fetch'), 'results.gz');
  await fetchServed(kc, served, token, file);
  assert.equal(fs.statSync(file).size, served.bytes);
  await assert.rejects(fetchServed(kc, served, token, file), 'not served any more');
  await kubectl(['-n', 'gadget', 'delete', 'gadgetrun', name]);
  await kubectl(['-n', 'gadget', 'delete', 'role,rolebinding', 'reader']);
});

test('expired runs go: the next run deletes them (finished past their ttl, cancelled, a runbook’s marked one) and their ConfigMaps follow by owner', { skip: skipK8s, timeout: 300_000 }, async () => {
  // a run whose expiry passed a minute ago, with its results in place
  const old = `old-${Date.now().toString(36)}`;
  const run = {
    apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun',
    metadata: { name: old, namespace: 'gadget', annotations: { 'gadget-run.dev/expires-at': new Date(Date.now() - 60_000).toISOString() } },
    spec: { nodes: [NODE], recipe: 'name: old\nduration: 1s\nsteps: [{id: execs, gadget: trace/exec}]\n' },
  };
  assert.equal((await kubectl(['apply', '-f', '-'], JSON.stringify(run))).code, 0);
  await eventually('the old run’s results', async () => ((await kubectl(['-n', 'gadget', 'get', 'configmap', `${old}-${NODE}-0`])).code === 0 ? true : undefined), 120_000);

  // a run that is cancelled (Ctrl-C), with a ttl of 1s
  const dir = tmp('cancel');
  const file = path.join(dir, 'r.yaml');
  fs.writeFileSync(file, 'name: cancelled\nduration: 60s\ncluster: {ttl: 1s}\nsteps: [{id: execs, gadget: trace/exec}]\n');
  const c = gadgetRun(['run', file, '--cluster', '--node', NODE, '--out', path.join(dir, 'out')]);
  let err = '';
  c.child.stderr!.on('data', (d) => (err += d));
  await eventually('the node running', async () => (/node gadget-node-0: Running/.test(err) ? true : undefined), 120_000);
  c.child.kill('SIGINT');
  const cr = await c.done;
  assert.equal(cr.code, 130, cr.stderr);
  const cancelled = summaryOf(path.join(dir, 'out')).cluster.run;
  const expires = Date.parse((await kubectl(['-n', 'gadget', 'get', 'gadgetrun', cancelled, '-o', 'jsonpath={.metadata.annotations.gadget-run\\.dev/expires-at}'])).stdout);
  assert.ok(expires <= Date.now() + 1000, 'its ttl runs from when the CLI had its results');
  await new Promise((r) => setTimeout(r, 1500));

  // the cancelled run's own start already swept the old one (every run sweeps before it starts)
  assert.match(cr.stderr, new RegExp(`deleted \\d+ expired runs? .*${old}`));
  // the next run sweeps the cancelled one
  const r = await clusterRun('name: sweeper\nduration: 1s\nsteps: [{id: execs, gadget: trace/exec}]\n', []);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(cancelled));
  for (const name of [old, cancelled]) {
    assert.match((await kubectl(['-n', 'gadget', 'get', 'gadgetrun', name])).stderr, /NotFound/);
    // the garbage collector deletes the ConfigMaps the run owned
    await eventually(`${name}'s ConfigMaps collected`, async () => {
      const left = await kubectl(['-n', 'gadget', 'get', 'configmaps', '-l', `gadget-run.dev/run=${name}`, '-o', 'name']);
      return left.code === 0 && left.stdout.trim() === '' ? true : undefined;
    }, 120_000);
  }
  // the sweeper itself stays until its own ttl (1h by default)
  assert.equal((await kubectl(['-n', 'gadget', 'get', 'gadgetrun', summaryOf(r.out).cluster.run])).code, 0);
});

test('two users’ runs on the same node at once stay apart: each in its team’s namespace, neither can read the other’s (kubectl auth can-i --as)', { skip: skipK8s, timeout: 600_000 }, async () => {
  for (const ns of ['team-a', 'team-b']) await kubectl(['create', 'namespace', ns]);
  // the agents follow runs in both (a Role in each); the DaemonSet rolls to the new spec
  const deployed = await gadgetRun(['deploy', '--apply', '--image', suite.cluster.image, '--pull-policy', 'Never', '--run-namespace', 'team-a,team-b']).done;
  assert.equal(deployed.code, 0, deployed.stderr);
  const rolled = await kubectl(['-n', 'gadget', 'rollout', 'status', 'daemonset/gadget-run', '--timeout=240s']);
  assert.equal(rolled.code, 0, rolled.stderr + rolled.stdout);
  await eventually('the new agent watching both namespaces', async () => {
    const logs = await kubectl(['-n', 'gadget', 'logs', await agentPod()]);
    return /watching gadgetruns in gadget, team-a, team-b/.test(logs.stderr + logs.stdout) ? true : undefined;
  }, 120_000);

  // alice runs in team-a, bob in team-b: each may run and read there, and port-forward to the agents (big results)
  const users: Record<string, { ns: string; kubeconfig: string }> = {};
  for (const [user, ns] of [['alice', 'team-a'], ['bob', 'team-b']]) {
    await kubectl(['-n', ns, 'create', 'serviceaccount', user]);
    await kubectl(['-n', ns, 'create', 'role', 'runner', '--verb=create,get,list,watch,patch,delete', '--resource=gadgetruns.gadget-run.dev']);
    await kubectl(['-n', ns, 'create', 'role', 'reader', '--verb=get,list', '--resource=configmaps']);
    // the nodes' answers: watched by the CLI, written only by the agents
    await kubectl(['-n', ns, 'create', 'role', 'answers', '--verb=get,list,watch', '--resource=gadgetrunnodes.gadget-run.dev']);
    for (const role of ['runner', 'reader', 'answers']) await kubectl(['-n', ns, 'create', 'rolebinding', `${user}-${role}`, `--role=${role}`, `--serviceaccount=${ns}:${user}`]);
    users[user] = { ns, kubeconfig: writeTokenKubeconfig(path.join(tmp(user), 'kubeconfig'), await serviceAccountToken(adminConfig(), ns, user)) };
  }
  await kubectl(['-n', 'gadget', 'create', 'role', 'fetch', '--verb=get,create', '--resource=pods/portforward']);
  await kubectl(['-n', 'gadget', 'create', 'rolebinding', 'fetch', '--role=fetch', '--serviceaccount=team-a:alice', '--serviceaccount=team-b:bob']);

  const recipeFile = path.join(tmp('tenants'), 'r.yaml');
  fs.writeFileSync(recipeFile, 'name: tenant\nduration: 3s\nsteps: [{id: execs, gadget: trace/exec}]\n');
  const runs = await Promise.all(Object.entries(users).map(async ([user, u]) => {
    const out = path.join(tmp(`out-${user}`), 'out');
    // alice's result is served (0KiB: above any limit), bob's goes inline: both paths, at once, on one node
    const extra = user === 'alice' ? ['--inline-limit', '0KiB'] : [];
    const r = await gadgetRun(['run', recipeFile, '--cluster', '--node', NODE, '--run-namespace', u.ns, '--out', out, ...extra], { KUBECONFIG: u.kubeconfig }).done;
    return { user, ns: u.ns, r, out };
  }));
  for (const { user, ns, r, out } of runs) {
    assert.equal(r.code, 0, `${user}: ${r.stderr}`);
    const s = summaryOf(out);
    assert.equal(s.cluster.nodes[0].phase, 'Succeeded');
    const cms = await kubectl(['-n', ns, 'get', 'configmaps', '-l', `gadget-run.dev/run=${s.cluster.run}`, '-o', 'name']);
    assert.ok(cms.stdout.trim(), `${user}'s results are in ${ns}`);
    assert.equal((await kubectl(['-n', ns, 'get', 'gadgetrun', s.cluster.run])).code, 0);
  }
  assert.ok(summaryOf(runs[0].out).cluster.nodes[0].servedBytes! > 0, 'alice fetched hers from the agent');
  // neither reads the other's runs or results
  for (const [who, other] of [['system:serviceaccount:team-a:alice', 'team-b'], ['system:serviceaccount:team-b:bob', 'team-a']]) {
    for (const what of [['get', 'configmaps'], ['list', 'configmaps'], ['get', 'gadgetruns.gadget-run.dev'], ['list', 'gadgetruns.gadget-run.dev'], ['list', 'gadgetrunnodes.gadget-run.dev'], ['watch', 'gadgetrunnodes.gadget-run.dev']]) {
      const can = await kubectl(['auth', 'can-i', ...what, '-n', other, '--as', who]);
      assert.equal(can.stdout.trim(), 'no', `${who} ${what.join(' ')} in ${other}`);
    }
  }
  const bobsRun = summaryOf(runs[1].out).cluster.run;
  const peek = await kubectl(['--kubeconfig', users.alice.kubeconfig, '-n', 'team-b', 'get', 'configmap', `${bobsRun}-${NODE}-0`]);
  assert.notEqual(peek.code, 0);
  assert.match(peek.stderr, /forbidden/i);
  // carol may run in team-a but not read the nodes' answers: told what her role lacks, and her run is cancelled, not left running unseen
  await kubectl(['-n', 'team-a', 'create', 'serviceaccount', 'carol']);
  for (const role of ['runner', 'reader']) await kubectl(['-n', 'team-a', 'create', 'rolebinding', `carol-${role}`, `--role=${role}`, '--serviceaccount=team-a:carol']);
  const carol = writeTokenKubeconfig(path.join(tmp('carol'), 'kubeconfig'), await serviceAccountToken(adminConfig(), 'team-a', 'carol'));
  const refused = await gadgetRun(['run', recipeFile, '--cluster', '--node', NODE, '--run-namespace', 'team-a', '--out', path.join(tmp('out-carol'), 'out')], { KUBECONFIG: carol }).done;
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /cannot follow the nodes' answers \(gadgetrunnodes\.gadget-run\.dev\) in namespace team-a: .*forbidden.*get, list and watch/is);
  const carols = JSON.parse((await kubectl(['-n', 'team-a', 'get', 'gadgetruns', '-o', 'json'])).stdout).items.filter((r: { spec: { cancel?: boolean } }) => !runs.some((x) => summaryOf(x.out).cluster.run === (r as unknown as { metadata: { name: string } }).metadata.name));
  assert.equal(carols.length, 1);
  assert.equal(carols[0].spec.cancel, true);
  for (const ns of ['team-a', 'team-b']) await kubectl(['delete', 'namespace', ns, '--wait=false']);
  await kubectl(['-n', 'gadget', 'delete', 'role,rolebinding', 'fetch']);
});
