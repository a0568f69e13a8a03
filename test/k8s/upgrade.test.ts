/**
 * Upgrades with two versions, on the real test cluster (test/k8s/cluster.ts): the DaemonSet's
 * agent of version A (the build under test, its pods labelled with its version) runs a long
 * trace/exec run; `deploy` of version B (the same image with another version label: a new
 * revision of the pod template, which is what a new release's manifests are to the DaemonSet)
 * rolls the node's agent over (RollingUpdate, maxUnavailable 1). Asserted: A's agent stops the
 * in-flight run on SIGTERM and its node result arrives with what it captured (in ConfigMaps: the
 * pod is going away), saying "agent replaced during the run", and the cluster verdict fails
 * closed on it; B's agent is Running and Ready, leaves the old run as A answered it, and runs a
 * new run; nothing of A is left (its pod, its processes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AGENT_REPLACED, nodeObjectName } from '../../src/k8s/agent.ts';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
import type { GadgetRun, GadgetRunNode, NodeResult } from '../../src/k8s/crd.ts';
import { labelValue, VERSION_LABEL } from '../../src/k8s/manifests.ts';
import { TOOL_VERSION } from '../../src/runner/version.ts';
import { agentPid, agentPods, clusterRun, clusterSuite, deployAgent, eventually, gadgetRun, kubectl, NODE, podProcesses, skipK8s } from './cluster.ts';

// a comm of its own (at most 15 characters): the steps' kernel filter sees only this test's execs
const MARK = `grupg${process.pid % 100_000}`;
const VERSION_A = labelValue(TOOL_VERSION);
const VERSION_B = `${VERSION_A}-next`;
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `gadget-run-k8s-upgrade-${p}-`));
const summaryOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as ClusterSummary;
const ready = (pod: any) => pod.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');

const suite = clusterSuite({ deploy: true });

/** Starts a program named MARK every 200 ms, on this machine: every agent here (hostPID) sees its execs. */
function marker(): { stop(): void } {
  const bin = path.join(tmp('marker'), MARK);
  fs.copyFileSync('/bin/true', bin);
  fs.chmodSync(bin, 0o755);
  const loop = spawn('/bin/sh', ['-c', `while :; do ${bin}; sleep 0.2; done`], { stdio: 'ignore' });
  return { stop: () => loop.kill('SIGKILL') };
}

/** This node's answer to a run (its GadgetRunNode's status), if it answered. */
async function nodeAnswer(run: string): Promise<NodeResult | undefined> {
  const r = await kubectl(['-n', 'gadget', 'get', 'gadgetrunnode', nodeObjectName(run, NODE), '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as GadgetRunNode).status : undefined;
}

/** This test's GadgetRun once its node says `phase` (the CLI names it after the recipe, with a suffix). */
async function runOnNode(recipeName: string, phase: string): Promise<GadgetRun> {
  return eventually(`the run ${recipeName} ${phase} on ${NODE}`, async () => {
    const r = await kubectl(['-n', 'gadget', 'get', 'gadgetruns', '-o', 'json']);
    const runs = JSON.parse(r.stdout || '{"items":[]}').items as GadgetRun[];
    const run = runs.find((x) => x.spec.recipe.includes(`name: ${recipeName}\n`));
    return run && (await nodeAnswer(run.metadata.name))?.phase === phase ? run : undefined;
  }, 120_000);
}

test('a rolling update to a new version: the in-flight run’s node result arrives and says its agent was replaced (the run fails closed); the new agent runs the next run; nothing of the old one is left', { skip: skipK8s, timeout: 600_000 }, async (t) => {
  const [a, ...others] = await agentPods();
  assert.equal(others.length, 0, 'one agent pod on the node');
  assert.equal(a.metadata.labels[VERSION_LABEL], VERSION_A);
  const pidA = await agentPid(a.metadata.uid);
  const m = marker();
  t.after(() => m.stop());

  const name = `upgrade-${process.pid}`;
  const dir = tmp('run');
  fs.writeFileSync(path.join(dir, 'r.yaml'), `name: ${name}\nduration: 10m\nsteps:\n  - id: execs\n    gadget: trace/exec\n    filter: comm==${MARK}\n    outputs: [execs.ndjson]\n`);
  const out = path.join(dir, 'out');
  const run = gadgetRun(['run', path.join(dir, 'r.yaml'), '--cluster', '--node', NODE, '--out', out]);
  t.after(() => run.child.kill('SIGKILL'));
  const inFlight = await runOnNode(name, 'Running');
  // A captures a few seconds of the marker's execs before it is replaced
  await new Promise((r) => setTimeout(r, 3000));

  const t0 = Date.now();
  await deployAgent(suite.cluster.image, VERSION_B);
  t.diagnostic(`rolled over to ${VERSION_B} in ${Date.now() - t0} ms`);

  // the in-flight run ended with A's answer: not lost, not passed
  const r = await run.done;
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const s = summaryOf(out);
  const node = s.cluster.nodes[0];
  assert.equal(node.node, NODE);
  assert.equal(node.phase, 'Failed');
  assert.equal(node.status, 'interrupted');
  assert.match(node.message!, new RegExp(`^${AGENT_REPLACED} \\(SIGTERM\\): its steps were stopped early`));
  assert.ok(node.configMaps! >= 1 && node.servedBytes === undefined, `A's result went into the API server, not served from a pod going away: ${JSON.stringify(node)}`);
  assert.notEqual(s.status, 'passed');
  assert.ok(s.reasons.some((x) => x.startsWith(`node ${NODE} failed: ${AGENT_REPLACED}`)), JSON.stringify(s.reasons));
  const step = s.steps[0];
  assert.equal(step.status, 'interrupted');
  assert.equal(step.reason, `${NODE}: interrupted (${AGENT_REPLACED})`);
  // what A captured until SIGTERM came back whole
  assert.ok(step.events > 0, JSON.stringify(step));
  const execs = fs.readFileSync(path.join(out, 'raw', 'execs.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(execs.length, step.events);
  assert.ok(execs.every((e) => e.comm === MARK));
  // B found A's final answer and left it: it did not take the old run up again
  const after = await nodeAnswer(inFlight.metadata.name);
  assert.equal(after?.phase, 'Failed');
  assert.match(after!.message!, new RegExp(`^${AGENT_REPLACED}`));

  // B runs, Ready, and is the only agent: A's pod and processes are gone
  const pods = await agentPods();
  assert.deepEqual(pods.map((p) => p.metadata.labels[VERSION_LABEL]), [VERSION_B]);
  const b = pods[0];
  assert.notEqual(b.metadata.uid, a.metadata.uid);
  assert.equal(b.status.phase, 'Running');
  assert.ok(ready(b));
  assert.equal(b.metadata.deletionTimestamp, undefined);
  const gone = await kubectl(['-n', 'gadget', 'get', 'pod', a.metadata.name]);
  assert.match(gone.stderr, /NotFound/, gone.stdout);
  await eventually('no process of A left', async () => (podProcesses(a.metadata.uid).length === 0 ? true : undefined), 60_000);
  assert.ok(!fs.existsSync(`/proc/${pidA}`) || !fs.readFileSync(`/proc/${pidA}/cgroup`, 'utf8').includes(a.metadata.uid));
  const ds = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'daemonset', 'gadget-run', '-o', 'json'])).stdout);
  assert.equal(ds.spec.template.metadata.labels[VERSION_LABEL], VERSION_B);
  assert.equal(ds.status.updatedNumberScheduled, ds.status.desiredNumberScheduled, JSON.stringify(ds.status));

  // a new run on B works
  const next = await clusterRun(`name: ${name}-b\nduration: 3s\nsteps:\n  - { id: execs, gadget: trace/exec, filter: comm==${MARK} }\n`, []);
  assert.equal(next.code, 0, next.stdout + next.stderr);
  const ns = summaryOf(next.out);
  assert.deepEqual(ns.cluster.nodes.map((n) => [n.node, n.phase]), [[NODE, 'Succeeded']]);
  assert.ok(ns.steps[0].events > 0, JSON.stringify(ns.steps[0]));
  // B's own agent answered, never restarted
  const bNow = (await agentPods()).find((p) => p.metadata.uid === b.metadata.uid);
  assert.equal(bNow?.status.containerStatuses[0].restartCount, 0, JSON.stringify(bNow?.status));
});
