/**
 * Scale: N simulated nodes (Node objects without a kubelet; N = GADGET_RUN_K8S_NODES, 50 in
 * `npm test`), each with its own agent in --fake mode (synthetic events, no kernel), all
 * authenticated as the agent's ServiceAccount. Up to 50 nodes each agent is a process of its
 * own (`gadget-run agent --fake`); past that, 500 processes of ~50 MB do not fit beside the
 * machine's other users, so the agents run 50 to a process (test/k8s/agent-host.ts: each its
 * own Agent, client, node name and token; GADGET_RUN_K8S_AGENTS_PER_PROCESS changes the 50).
 * One `run --cluster` over all of them completes and merges. The figures (time to all
 * attached, to all merged, API calls per node by verb as the agents and the API server
 * counted them, 5xx answered and retried, the CLI's peak RSS, the API server's CPU seconds,
 * the load average) are printed as test diagnostics, and written to GADGET_RUN_K8S_FIGURES
 * when set (bench/k8s-scale.ts) — speed is measured here, never asserted. What is asserted is
 * the design that makes it scale: no node writes the run's one object (each answers in a
 * GadgetRunNode of its own: one create, at most one patch) and creates one ConfigMap, so at most
 * 3 writes per node and run; its answer stays small; every 5xx the API server answered was retried.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
// @ts-expect-error -- a JavaScript module without types
import * as harness from '../../scripts/k8s-cluster.mjs';
import { adminConfig, apiServerCpuSeconds, processCpuSeconds, apiServerRequests, gadgetRun, kubectl, registerNodes, removeSimulatedNodes, requestDelta, serviceAccountToken, skipK8s, startAgent, startAgentHost, useCluster, type Cluster } from './cluster.ts';

const N = Number(process.env.GADGET_RUN_K8S_NODES ?? 50);
if (!Number.isInteger(N) || N < 1) throw new Error(`GADGET_RUN_K8S_NODES=${process.env.GADGET_RUN_K8S_NODES}: a number of nodes, e.g. 500`);
const PER_PROCESS = Number(process.env.GADGET_RUN_K8S_AGENTS_PER_PROCESS ?? (N <= 50 ? 1 : 50));
const nodes = Array.from({ length: N }, (_, i) => `sim-${String(i).padStart(3, '0')}`);
let cluster: Cluster | undefined;
const agents: { stop(): Promise<unknown>; child: { pid?: number } }[] = [];
/** CPU seconds the agent processes used so far (the simulated nodes' own work: their runs, evaluations, packs) */
const agentCpuSeconds = () => agents.reduce((a, x) => a + processCpuSeconds(x.child.pid), 0);

before(async () => {
  if (skipK8s) return;
  cluster = await useCluster();
}, { timeout: 3_600_000 });

after(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  // a before() that timed out waiting for the cluster lock must not tear down another file's run
  if (skipK8s || !cluster) return;
  await removeSimulatedNodes();
  await gadgetRun(['undeploy', '--wait']).done;
  await cluster?.stop();
}, { timeout: 600_000 });

/** Retries of requests a 5xx answered, as the clients logged them (withRetry: `… failed (504 …); retry n in …`). */
const RETRIED_5XX = /failed \((?:HTTP-Code: )?5\d\d\b[\s\S]*?\); retry \d+/g;
function countRetries(stream: Readable | null, counter: { n: number }): void {
  let tail = '';
  stream?.on('data', (d: Buffer) => {
    const text = tail + d.toString();
    const cut = text.lastIndexOf('\n') + 1;
    counter.n += text.slice(0, cut).match(RETRIED_5XX)?.length ?? 0;
    tail = text.slice(cut);
  });
}

/**
 * The API server's traces of gadget-run writes slower than its 500 ms threshold, from its log
 * after `offset`: how many and how long (what a node's answer cost).
 */
function slowWrites(offset: number): { count: number; medianMs?: number; maxMs?: number } {
  const log = `${harness.stateDir}/logs/kube-apiserver.log`;
  const fd = fs.openSync(log, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buf, 0, buf.length, offset);
    const ms = [...buf.toString().matchAll(/"(?:Patch|Create)" url:\/apis\/gadget-run\.dev\/[^,]*,[^\n]*\(total time: (\d+)ms\)/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    return { count: ms.length, ...(ms.length ? { medianMs: ms[Math.floor(ms.length / 2)], maxMs: ms.at(-1) } : {}) };
  } finally {
    fs.closeSync(fd);
  }
}
const apiServerLogSize = () => fs.statSync(`${harness.stateDir}/logs/kube-apiserver.log`).size;

/** The 1-minute load average now (/proc/loadavg). */
const load1 = () => Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

const perNode = (counts: Record<string, number>) => Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round((v / N) * 100) / 100]));

test(`a ${N}-node run (fake agents${PER_PROCESS === 1 ? ' as processes' : `, ${PER_PROCESS} to a process`}) completes and merges`, { skip: skipK8s, timeout: Math.max(600_000, N * 6000) }, async (t) => {
  // deploy --apply: the CLI's own server-side apply, not kubectl's
  const deployed = await gadgetRun(['deploy', '--apply', '--image', cluster!.image, '--pull-policy', 'Never']).done;
  assert.equal(deployed.code, 0, deployed.stderr);
  await registerNodes(nodes);
  const token = await serviceAccountToken(adminConfig());
  const t0 = Date.now();
  const retried = { n: 0 };
  if (PER_PROCESS === 1) {
    // 50 Node processes starting at once on 2 cores take ~40 s; more when other tests load the machine
    const started = await Promise.all(nodes.map((n) => startAgent(n, token, ['--fake'], 300_000)));
    for (const a of started) countRetries(a.child.stderr, retried);
    agents.push(...started);
  } else {
    const groups = Array.from({ length: Math.ceil(N / PER_PROCESS) }, (_, i) => nodes.slice(i * PER_PROCESS, (i + 1) * PER_PROCESS));
    const hosts = await Promise.all(groups.map((g) => startAgentHost(g, token, 600_000)));
    for (const h of hosts) countRetries(h.child.stderr, retried);
    agents.push(...hosts);
  }
  const agentsReadyMs = Date.now() - t0;
  t.diagnostic(`${N} agents (${Math.ceil(N / PER_PROCESS)} processes) ready in ${agentsReadyMs} ms`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-scale-'));
  const file = path.join(dir, 'r.yaml');
  fs.writeFileSync(file, `name: scale
duration: 2s
cluster: {attach_timeout: ${Math.max(120, N)}s}
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
  const rssFile = path.join(dir, 'cli-peak-rss');
  const before = await apiServerRequests();
  const cpuBefore = await apiServerCpuSeconds();
  const agentCpuBefore = agentCpuSeconds();
  const logOffset = apiServerLogSize();
  const loads = [load1()];
  const sampler = setInterval(() => loads.push(load1()), 5000);
  const started = Date.now();
  // the CLI as users run it (the bundle), with a preload that writes its peak RSS as it exits
  const r = await gadgetRun(['run', file, '--cluster', '--node', nodes.join(','), '--out', out], {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${path.join(import.meta.dirname, 'peak-rss.mjs')}`.trim(),
    GADGET_RUN_PEAK_RSS_FILE: rssFile,
  }).done;
  const wall = Date.now() - started;
  clearInterval(sampler);
  loads.push(load1());
  const apiServerCpu = Math.round(((await apiServerCpuSeconds()) - cpuBefore) * 10) / 10;
  const agentCpu = Math.round((agentCpuSeconds() - agentCpuBefore) * 10) / 10;
  const server = requestDelta(before, await apiServerRequests());
  const slowPatches = slowWrites(logOffset);
  retried.n += r.stderr.match(RETRIED_5XX)?.length ?? 0;
  const [maxRss, peakSample] = fs.existsSync(rssFile) ? fs.readFileSync(rssFile, 'utf8').split('\n') : [];
  const cliPeakRssMiB = maxRss ? Math.round(Number(maxRss) / 1024) : undefined;
  // where the CLI's memory peaked: its parts (MiB) and when (ms since the CLI started; the run's own times count from just after)
  const cliPeak = peakSample ? (JSON.parse(peakSample) as Record<string, number>) : undefined;
  const loadAverage1m = { start: loads[0], max: Math.max(...loads), end: loads.at(-1) };
  // before any assertion: a run that fails at scale is a measurement too
  t.diagnostic(`API server requests during the run (verb resource code): ${JSON.stringify(server)}; gadget-run writes slower than 500 ms: ${JSON.stringify(slowPatches)}; CLI wall ${wall} ms, exit ${r.code}, peak RSS ${cliPeakRssMiB} MiB; API server CPU ${apiServerCpu} s; agent processes' CPU ${agentCpu} s; load average ${JSON.stringify(loadAverage1m)}; retries of a 5xx logged: ${retried.n}`);
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

  // no node wrote the run's one object; each answered in its own: one create, at most one patch (Running, final)
  const sum = (re: RegExp) => Object.entries(server).filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
  assert.equal(sum(/^patch gadgetruns\/status /), 0, 'no node patched the run');
  const answered = sum(/^(create|post) gadgetrunnodes 2\d\d$/);
  const patched = sum(/^patch gadgetrunnodes 2\d\d$/);
  assert.equal(answered, N, `${answered} GadgetRunNodes created for ${N} nodes`);
  assert.ok(patched <= N, `${patched} answers patched for ${N} nodes`);
  // one ConfigMap per node (a small result: its report and its one chunk): ≤ 3 writes per node and run
  const created = sum(/^(create|post) configmaps 2\d\d$/);
  assert.equal(created, N, `${created} result ConfigMaps for ${N} nodes`);
  assert.ok(answered + patched + created <= 3 * N, `${answered + patched + created} writes for ${N} nodes`);
  // every 5xx the API server answered was retried by its client (none left unretried: all nodes succeeded too)
  const server5xx = sum(/ 5\d\d$/);
  assert.ok(retried.n >= server5xx, `${server5xx} answers 5xx, ${retried.n} retries of one logged`);
  const listed = JSON.parse((await kubectl(['-n', 'gadget', 'get', 'gadgetrunnodes', '-l', `gadget-run.dev/run=${s.cluster.run}`, '-o', 'json'])).stdout) as { items: { spec: { node: string }; status: Record<string, unknown> }[] };
  assert.deepEqual(listed.items.map((i) => i.spec.node).sort(), nodes);
  for (const i of listed.items) assert.deepEqual(Object.keys(i.status).filter((k) => !['phase', 'status', 'message'].includes(k)), []);
  const status = Object.fromEntries(listed.items.map((i) => [i.spec.node, i.status]));
  // every node's report came back (its own object), with what it sent
  for (const n of s.cluster.nodes) assert.ok(n.apiCallsByVerb?.['create gadgetrunnodes'], `${n.node}: ${JSON.stringify(n)}`);
  // and a node's run sends nothing but those kinds of request
  for (const n of s.cluster.nodes) assert.deepEqual(Object.keys(n.apiCallsByVerb ?? {}).filter((k) => !['create gadgetrunnodes', 'patch gadgetrunnodes', 'create configmaps'].includes(k)), [], n.node);

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
    server5xx,
    retried5xx: retried.n,
    slowWrites: slowPatches,
    cliPeakRssMiB,
    cliPeak,
    apiServerCpuSeconds: apiServerCpu,
    agentCpuSeconds: agentCpu,
    agentProcesses: Math.ceil(N / PER_PROCESS),
    agentsReadyMs,
    loadAverage1m,
  };
  t.diagnostic(`figures: ${JSON.stringify(figures)}`);
  if (process.env.GADGET_RUN_K8S_FIGURES) fs.writeFileSync(process.env.GADGET_RUN_K8S_FIGURES, JSON.stringify(figures, null, 2) + '\n');
});
