/**
 * The agent fits its limits, on the real test cluster (test/k8s/cluster.ts): the DaemonSet's
 * agent (limits cpu 1, memory 512Mi; --limit-ring 64MiB --limit-output 1GiB) captures 1M opens
 * of a workload on its node, and its RSS stays within the local runner's bound (150 MB) and its
 * container is never OOM-killed; the result, far above the inline limit, is fetched through the
 * pod's port-forward. A run asking more than the agent allows is refused on the node with the
 * reason, and a capture past the agent's output limit is `truncated` with the reason. The
 * figures are printed as test diagnostics (docs/kubernetes.md quotes them); only the bounds the
 * product promises are asserted.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
import { AGENT_OLD_SPACE_MB, AGENT_RESOURCES, AGENT_SEMI_SPACE_MB } from '../../src/k8s/manifests.ts';
import { ROOT } from '../runner/cli-helpers.ts';
import {
  adminConfig, agentPid, attachments, clusterRun, clusterSuite, eventually, gadgetRun, kubectl, NODE, registerNodes, serviceAccountToken, skipK8s, startAgent,
} from './cluster.ts';

const EVENTS = 1_000_000;
/** the local runner's bound (bench/memory.ts), which the agent in its pod must keep too */
const RSS_BOUND_MB = 150;
// a comm of its own (at most 15 characters): the steps' kernel filter sees only this workload
const COMM = `grmem${process.pid % 100_000}`;
let workload = '';

before(() => {
  if (skipK8s) return;
  // the open loop of bench/ (static: exactly N opens of /dev/null, no loader's), under the test's own name
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'bench'), '../build/bench/open_loop'], { stdio: 'inherit' });
  workload = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-mem-')), COMM);
  fs.copyFileSync(path.join(ROOT, 'build/bench/open_loop'), workload);
  fs.chmodSync(workload, 0o755);
});
after(() => {
  if (workload) fs.rmSync(path.dirname(workload), { recursive: true, force: true });
});
const { agents } = clusterSuite({ deploy: true });

/** `key value` lines of a cgroup v1 file (memory.stat, memory.oom_control) */
function keyed(file: string): Record<string, number> {
  return Object.fromEntries(fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
}

/** The agent container's memory cgroup: v1 (this machine's hybrid layout) or v2. */
function memoryCgroup(pid: number): { v: 1 | 2; dir: string } {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  if (v1) return { v: 1, dir: path.join('/sys/fs/cgroup/memory', v1.split(':')[2]) };
  const unified = lines.find((l) => l.startsWith('0::'))!;
  return { v: 2, dir: path.join('/sys/fs/cgroup', unified.slice(3)) };
}

function rssPeakMb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/**
 * The peaks of the RSS's parts while a run goes on, sampled every 100 ms (VmHWM has the total's
 * only): anonymous (V8's heap, buffers) and file-backed (node's own text and libraries, and the
 * BPF ring buffer's mapping: its data pages are mapped twice, so a 16 MiB ring is 32 MB of it).
 */
function sampleRss(pid: number): () => { anonMb: number; fileMb: number } {
  let anon = 0;
  let file = 0;
  const timer = setInterval(() => {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      anon = Math.max(anon, Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0));
      file = Math.max(file, Number(/RssFile:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      /* the process went away: the test says so */
    }
  }, 100);
  return () => {
    clearInterval(timer);
    return { anonMb: Math.round(anon / 1024), fileMb: Math.round(file / 1024) };
  };
}

/**
 * A run whose workload starts once the agent (host pid) holds its steps' attachments, stable for a
 * second: belt and braces (the node's Running report comes once its steps are attached; it once came
 * when the agent picked the run up, and the opens before the attach were never seen).
 */
async function runWithWorkload(recipe: string, args: string[], n: number, agent: number): Promise<{ code: number | null; stdout: string; stderr: string; out: string; workload: { n: number; failed: number; elapsed_s: number } }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-mem-run-'));
  fs.writeFileSync(path.join(dir, 'r.yaml'), recipe);
  const out = path.join(dir, 'out');
  const before = attachments(agent);
  const run = gadgetRun(['run', path.join(dir, 'r.yaml'), ...args, '--out', out]);
  let last = -1;
  await eventually('the agent’s steps attached', async () => {
    const now = attachments(agent);
    const stable = now > before && now === last;
    last = now;
    return stable || run.child.exitCode !== null ? true : undefined;
  }, 120_000);
  await new Promise((r) => setTimeout(r, 1000));
  const loop = new Promise<string>((resolve, reject) => {
    const child = spawn(workload, [String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`${COMM} exited ${code}: ${text}`))));
  });
  const r = await run.done;
  return { ...r, out, workload: JSON.parse(await loop) };
}

test(`the DaemonSet's agent captures ${EVENTS} opens within its limits: RSS ≤ ${RSS_BOUND_MB} MB, never OOM-killed; the result comes through port-forward`, { skip: skipK8s, timeout: 600_000 }, async (t) => {
  const pid = await agentPid();
  const cg = memoryCgroup(pid);
  // the duration leaves the workload time under load; lost events would be counted, and are allowed here: the memory is the point
  const parts = sampleRss(pid);
  const r = await runWithWorkload(`name: agent-mem
allow_lost: true
duration: 40s
steps:
  - { id: opens, gadget: trace/open, filter: comm==${COMM} }
`, ['--cluster', '--node', NODE], EVENTS, pid);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(r.workload.n, EVENTS);
  const s = JSON.parse(fs.readFileSync(path.join(r.out, 'summary.json'), 'utf8')) as ClusterSummary;
  const step = s.steps[0];
  // every open reached the node's result or was counted lost: nothing vanished
  assert.equal(step.events + step.lost, EVENTS, JSON.stringify(step));
  const node = s.cluster.nodes[0];
  assert.equal(node.phase, 'Succeeded');
  assert.ok(node.servedBytes! > 1024 * 1024, `fetched from the agent, not stored in etcd: ${JSON.stringify(node)}`);
  assert.equal(node.configMaps, 1, 'chunk 0 alone: the report');

  const rss = rssPeakMb(pid);
  const figures: Record<string, unknown> = { events: step.events, lost: step.lost, workloadS: r.workload.elapsed_s, agentRssPeakMb: Math.round(rss), agentRssPartsPeakMb: parts(), servedMb: Math.round(node.servedBytes! / 1024 ** 2 * 10) / 10 };
  if (cg.v === 1) {
    figures.cgroupPeakMb = Math.round(Number(fs.readFileSync(path.join(cg.dir, 'memory.max_usage_in_bytes'), 'utf8')) / 1024 ** 2);
    const stat = keyed(path.join(cg.dir, 'memory.stat'));
    figures.cgroupRssNowMb = Math.round(stat.rss / 1024 ** 2);
    figures.cgroupCacheNowMb = Math.round(stat.cache / 1024 ** 2);
    figures.limitHits = Number(fs.readFileSync(path.join(cg.dir, 'memory.failcnt'), 'utf8'));
    const oom = keyed(path.join(cg.dir, 'memory.oom_control'));
    assert.equal(oom.oom_kill ?? 0, 0, 'no OOM kill in the agent container');
  } else {
    figures.cgroupPeakMb = fs.existsSync(path.join(cg.dir, 'memory.peak')) ? Math.round(Number(fs.readFileSync(path.join(cg.dir, 'memory.peak'), 'utf8')) / 1024 ** 2) : undefined;
    assert.equal(keyed(path.join(cg.dir, 'memory.events')).oom_kill, 0, 'no OOM kill in the agent container');
  }
  figures.limits = AGENT_RESOURCES.limits;
  figures.v8 = { maxOldSpaceMb: AGENT_OLD_SPACE_MB, maxSemiSpaceMb: AGENT_SEMI_SPACE_MB };
  t.diagnostic(`figures: ${JSON.stringify(figures)}`);
  assert.ok(rss <= RSS_BOUND_MB, `the agent's RSS peaked at ${rss.toFixed(0)} MB over ${step.events} events (bound ${RSS_BOUND_MB} MB)`);
  // the same agent process all along: not restarted, not OOM-killed
  assert.equal(await agentPid(), pid);
  const pod = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'pods', '-l', 'app.kubernetes.io/name=gadget-run', '-o', 'json'])).stdout).items.find((p: any) => p.spec.nodeName === NODE);
  assert.equal(pod.status.containerStatuses[0].restartCount, 0, JSON.stringify(pod.status.containerStatuses[0]));
});

test('a run asking more ring than the agent allows is refused on the node with the reason (not started, not OOM-killed)', { skip: skipK8s, timeout: 300_000 }, async () => {
  // 128 MiB is within the CLI's own default (256MiB): the node's agent (--limit-ring 64MiB) is what refuses
  const r = await clusterRun(`name: agent-ring\nduration: 2s\nsteps:\n  - { id: opens, gadget: trace/open, buffer: 128MiB, filter: comm==${COMM} }\n`, []);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const s = JSON.parse(fs.readFileSync(path.join(r.out, 'summary.json'), 'utf8')) as ClusterSummary;
  assert.equal(s.cluster.nodes[0].phase, 'Failed');
  assert.match(s.cluster.nodes[0].message!, /the recipe is not valid here: .*the limit is 64MiB/);
});

test('a capture past the agent\'s --limit-output is truncated with the reason, and fails the run', { skip: skipK8s, timeout: 400_000 }, async () => {
  // an agent as a process on a simulated node, with a small output limit: the same code as the pod's, real BPF
  const sim = 'sim-limits';
  await registerNodes([sim]);
  const agent = await startAgent(sim, await serviceAccountToken(adminConfig()), ['--limit-output', '4MiB']);
  agents.push(agent);
  const r = await runWithWorkload(`name: agent-out\nallow_lost: true\nduration: 20s\nsteps:\n  - { id: opens, gadget: trace/open, filter: comm==${COMM} }\n`, ['--cluster', '--node', sim], 200_000, agent.child.pid!);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const s = JSON.parse(fs.readFileSync(path.join(r.out, 'summary.json'), 'utf8')) as ClusterSummary;
  assert.equal(s.cluster.nodes[0].phase, 'Succeeded', 'the node captured: what it wrote came back');
  const step = s.steps[0];
  assert.equal(step.status, 'truncated');
  assert.match(step.reason!, new RegExp(`${sim}: truncated \\(reached its max_bytes \\(4MiB\\): \\d+ later events were not written`));
  assert.ok(step.events > 0 && step.events < 200_000, JSON.stringify(step));
  assert.ok(fs.statSync(path.join(r.out, 'raw', 'opens.ndjson')).size <= 4 * 1024 * 1024);
});
