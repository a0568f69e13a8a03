/**
 * One verdict for `run`, `replay` and `run --cluster`: the same captured record judged
 * by each path gives the same status, reasons and exit code (a cluster adds its nodes'
 * reasons). Each case is a raw/ folder made by hand (no kernel, no cluster): judged as
 * the run path judges its capture (judge), by replayRecipe, and, split over two node
 * folders (DIR/<node>/raw, each judged as its agent would), merged by mergeRaw and
 * judged by judgeCluster.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { nodeFailures } from '../../src/k8s/agent.ts';
import { judgeCluster, mergeRaw, type ClusterSummary, type NodeOutcome } from '../../src/k8s/cluster-run.ts';
import { readRunMeta, type RunMeta, type StepMeta } from '../../src/runner/capture.ts';
import { judge, type JudgeOptions } from '../../src/runner/judge.ts';
import { parseRecipe, type LoadedRecipe } from '../../src/runner/recipe.ts';
import { replayRecipe } from '../../src/runner/replay.ts';
import { renderTerminal } from '../../src/runner/report.ts';
import { exitCodeFor, type Summary } from '../../src/runner/summary.ts';
import { captured } from './evaluate-helpers.ts';
import { assertValidSummary } from './summary-schema.ts';

const NODES = ['n1', 'n2'];
const FIELDS = ['pid', 'comm', 'args', 'ret'];
const SECRETS = ['hunter2', 'key-ABC123'];
const LOAD_ERROR = 'load trace_open.bpf.o: EPERM — run as root or with CAP_BPF+CAP_PERFMON';
const NOT_TAKEN = 'the snapshot was not taken: the step was stopped (duration) before its delay of 5s; shorten the delay or mark the step optional';

type Event = Record<string, unknown>;
interface Capture {
  events: Event[] | null;
  meta?: Partial<StepMeta>;
}
interface Case {
  name: string;
  recipe: string;
  /** the recipe folder's other files (baselines) */
  files?: Record<string, string>;
  /** what one machine captured, by step; the cluster's nodes split it */
  steps: Record<string, Capture>;
  run?: Partial<RunMeta>;
  status: Summary['status'];
  reasons: string[];
  /** the cluster's reasons when its merge or its nodes add to them; default: reasons */
  clusterReasons?: string[];
}

const exec = (pid: number, comm: string, args: string[] = [comm]): Event => ({ pid, comm, args, ret: 0 });
const EXECS = [exec(1, 'sh', ['sh', '-c', 'make']), exec(2, 'make'), exec(3, 'curl', ['curl', 'https://example.com']), exec(4, 'cc')];

const CASES: Case[] = [
  {
    name: 'a clean capture',
    recipe: 'name: clean\nduration: 1s\nsteps:\n  - { id: execs, gadget: trace/exec }\nassertions:\n  - { name: saw make, expr: \'"make" in steps.execs.comm\' }\n',
    steps: { execs: { events: EXECS } },
    status: 'passed',
    reasons: [],
  },
  {
    name: 'lost events past allow_lost',
    recipe: 'name: lost\nduration: 1s\nallow_lost: 5\nsteps:\n  - { id: opens, gadget: trace/open }\n',
    steps: { opens: { events: [{ pid: 7, comm: 'flood', path: '/etc/hostname' }, { pid: 7, comm: 'flood', path: '/etc/hostname' }], meta: { gadget: 'trace/open', fields: ['pid', 'comm', 'path'], lost: 8 } } },
    status: 'failed',
    reasons: ['step opens lost 8 events in the kernel (ring buffer full; at most 5 may be): raise its buffer, narrow its filter, or set allow_lost'],
  },
  {
    name: 'a baseline with new keys',
    recipe: 'name: base\nduration: 1s\nsteps:\n  - id: execs\n    gadget: trace/exec\n    baseline: { file: execs-baseline.json, key: comm }\n',
    files: { 'execs-baseline.json': JSON.stringify(['make', 'sh']) },
    steps: { execs: { events: EXECS } },
    status: 'failed',
    reasons: ['step execs: 2 new keys not in execs-baseline.json: cc, curl (review them, then run with --update-baseline)'],
  },
  {
    name: 'a failed step',
    recipe: 'name: failing\nduration: 1s\nsteps:\n  - { id: execs, gadget: trace/exec }\n  - { id: opens, gadget: trace/open }\n',
    steps: { execs: { events: EXECS }, opens: { events: null, meta: { gadget: 'trace/open', status: 'failed', reason: LOAD_ERROR } } },
    status: 'failed',
    reasons: [`step opens failed: ${LOAD_ERROR}`],
    // each node's agent reports its failed step; the merge names the nodes it failed on
    clusterReasons: [
      `step opens failed: ${NODES.map((n) => `${n}: failed (${LOAD_ERROR})`).join('; ')}`,
      ...NODES.map((n) => `node ${n} failed: step opens failed: ${LOAD_ERROR}`),
    ],
  },
  {
    name: 'a snapshot never taken (not_run)',
    recipe: 'name: snap\nduration: 1s\nsteps:\n  - { id: execs, gadget: trace/exec }\n  - { id: procs, gadget: snapshot/process, delay: 5s, outputs: [procs.csv] }\n',
    steps: { execs: { events: EXECS }, procs: { events: null, meta: { gadget: 'snapshot/process', fields: ['pid', 'comm'], status: 'not_run', reason: NOT_TAKEN, snapshot_not_taken: true } } },
    status: 'failed',
    reasons: [`step procs not_run: ${NOT_TAKEN}`],
    clusterReasons: [
      `step procs not_run: ${NODES.map((n) => `${n}: not_run (${NOT_TAKEN})`).join('; ')}`,
      ...NODES.map((n) => `node ${n} failed: step procs not_run: ${NOT_TAKEN}`),
    ],
  },
  {
    name: 'a failed assertion',
    recipe: 'name: policy\nduration: 1s\nsteps:\n  - { id: execs, gadget: trace/exec }\nassertions:\n  - { name: no curl, expr: \'$count(steps.execs[comm = "curl"]) = 0\' }\n',
    steps: { execs: { events: EXECS } },
    status: 'failed',
    reasons: ['assertion "no curl" failed: expected true, got false: $count(steps.execs[comm = "curl"]) was 1'],
  },
  {
    // recorded before the recipe's redact pattern existed (or by an older gadget-run): the verdict masks it
    name: 'a secret in an event',
    recipe: 'name: secret\nduration: 1s\nredact: [\'key-[A-Z0-9]+\']\nsteps:\n  - { id: execs, gadget: trace/exec }\nassertions:\n  - { name: no deploy, expr: \'$count(steps.execs[comm = "deploy"]) = 0\' }\n  - { name: deploy key, expr: \'steps.execs[comm = "deploy"].args[2] = "none"\' }\n',
    steps: { execs: { events: [...EXECS, exec(9, 'deploy', ['deploy', '--password=hunter2', 'key-ABC123'])] } },
    status: 'failed',
    reasons: [
      'assertion "no deploy" failed: expected true, got false: $count(steps.execs[comm = "deploy"]) was 1',
      'assertion "deploy key" failed: expected true, got false: steps.execs[comm = "deploy"].args[2] was "***"',
    ],
  },
  {
    name: 'a run stopped by SIGTERM',
    recipe: 'name: stopped\nduration: 1m\nsteps:\n  - { id: execs, gadget: trace/exec }\n',
    steps: { execs: { events: EXECS, meta: { status: 'interrupted', ended: 'interrupted' } } },
    run: { signal: 'SIGTERM' },
    status: 'interrupted',
    reasons: ['interrupted by SIGTERM'],
  },
];

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-verdict-paths-'));

function runMeta(extra: Partial<RunMeta> = {}): RunMeta {
  return { tool_version: '0.0.0-test', node: 'host', kernel: '6.18.0', startedAt: '2026-12-04T12:00:00.000Z', ...extra };
}

/** A captured folder: raw/<step>.{ndjson,meta.json} and raw/run.json. */
function record(dir: string, steps: Record<string, Capture>, run: RunMeta, fields = FIELDS): void {
  for (const [id, c] of Object.entries(steps)) captured(dir, { [id]: c.events }, c.meta?.fields ?? fields, { [id]: { gadget: 'trace/exec', ...c.meta, ...(c.meta?.fields ? { fields: c.meta.fields } : {}) } });
  fs.writeFileSync(path.join(dir, 'raw', 'run.json'), JSON.stringify(run));
}

function loadCase(c: Case): { loaded: LoadedRecipe; recipeDir: string } {
  const recipeDir = tmp();
  const file = path.join(recipeDir, `${c.name.replace(/\W+/g, '-')}.yaml`);
  fs.writeFileSync(file, c.recipe);
  for (const [name, text] of Object.entries(c.files ?? {})) fs.writeFileSync(path.join(recipeDir, name), text);
  return { loaded: parseRecipe(c.recipe, file), recipeDir };
}

/** The run path: runRecipe puts its capture in DIR/raw and calls judge over DIR. */
async function judgeAsRun(loaded: LoadedRecipe, c: Case, opts: JudgeOptions = {}): Promise<{ summary: Summary; dir: string }> {
  const dir = tmp();
  record(dir, c.steps, runMeta(c.run));
  return { summary: await judge(loaded, dir, readRunMeta(dir)!, opts), dir };
}

async function judgeAsReplay(loaded: LoadedRecipe, c: Case, opts: { updateBaseline?: boolean } = {}): Promise<{ summary: Summary; dir: string }> {
  const from = tmp();
  record(from, c.steps, runMeta(c.run));
  const dir = tmp();
  return { summary: await replayRecipe(loaded, from, { outDir: dir, ...opts }), dir };
}

/** Node i's share of a capture: every other event (each naming its node), the lost events split, the rest as it is. */
function share(steps: Record<string, Capture>, i: number): Record<string, Capture> {
  const node = NODES[i];
  return Object.fromEntries(Object.entries(steps).map(([id, c]) => {
    const events = c.events && c.events.filter((_, j) => j % NODES.length === i).map((e) => ({ ...e, node }));
    const lost = c.meta?.lost ? Math.floor(c.meta.lost / NODES.length) + (i < c.meta.lost % NODES.length ? 1 : 0) : 0;
    return [id, { events, meta: { ...c.meta, lost, fields: [...(c.meta?.fields ?? FIELDS), 'node'] } }];
  }));
}

/**
 * The cluster path: each node's agent captures and judges its share (its phase from
 * nodeFailures, as the agent decides it), the CLI merges the node folders and judges the merge.
 */
async function judgeAsCluster(loaded: LoadedRecipe, c: Case, opts: { updateBaseline?: boolean; missing?: string[]; signal?: AbortSignal } = {}): Promise<{ summary: ClusterSummary; dir: string }> {
  const dir = tmp();
  const optional = new Set(loaded.recipe.steps.filter((s) => s.optional).map((s) => s.id));
  const nodes: NodeOutcome[] = [];
  for (const [i, node] of NODES.entries()) {
    const nodeDir = path.join(dir, node);
    record(nodeDir, share(c.steps, i), runMeta({ ...c.run, node }));
    const own = await judge(loaded, nodeDir, readRunMeta(nodeDir)!, { junit: false });
    const failures = nodeFailures(own, optional);
    nodes.push({ node, phase: failures.length ? 'Failed' : c.run?.signal ? 'Cancelled' : 'Succeeded', ...(failures.length ? { message: failures.join('; ') } : {}), status: own.status });
  }
  for (const node of opts.missing ?? []) nodes.push({ node, phase: 'Missing', message: 'no agent started the run within 30 s (is the DaemonSet\'s pod running on this node?)' });
  await mergeRaw(loaded, dir, NODES);
  const summary = await judgeCluster(loaded, dir, {
    cluster: { run: 'verdict-paths', nodes, allDoneMs: 0, mergedMs: 0, cliApiCalls: 0, apiServer: { configMaps: 0, bytes: 0 } },
    started: Date.now(),
    ...(c.run?.signal ? { signal: c.run.signal } : {}),
  }, { log: () => {}, ...(opts.updateBaseline ? { updateBaseline: true } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
  return { summary, dir };
}

/** Nothing a path wrote holds a secret: summary.json, report.md, the JUnit file. */
function assertNoSecret(dir: string, what: string): void {
  for (const f of ['summary.json', 'report.md', 'junit.xml']) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const s of SECRETS) assert.ok(!text.includes(s), `${what}: ${f} holds ${s}`);
  }
}

for (const c of CASES) {
  test(`one verdict for run, replay and run --cluster: ${c.name}`, async () => {
    const { loaded } = loadCase(c);
    const run = await judgeAsRun(loaded, c);
    const replay = await judgeAsReplay(loaded, c);
    const cluster = await judgeAsCluster(loaded, c);
    for (const [path_, r] of [['run', run], ['replay', replay], ['cluster', cluster]] as const) {
      assert.equal(r.summary.status, c.status, `${path_}: ${JSON.stringify(r.summary.reasons)}`);
      assert.equal(exitCodeFor(r.summary), exitCodeFor(run.summary), `${path_}: exit code`);
      assertValidSummary(JSON.parse(fs.readFileSync(path.join(r.dir, 'summary.json'), 'utf8')), `${c.name}: ${path_} summary.json`);
      assertNoSecret(r.dir, `${c.name}: ${path_}`);
    }
    assert.deepEqual(run.summary.reasons, c.reasons, 'run');
    assert.deepEqual(replay.summary.reasons, c.reasons, 'replay');
    assert.deepEqual(cluster.summary.reasons, c.clusterReasons ?? c.reasons, 'cluster');
    // what was evaluated is the same too: the steps' verdict inputs and every assertion
    const judged = (s: Summary) => ({ steps: s.steps.map((x) => [x.id, x.status, x.events, x.lost, x.baseline?.added]), assertions: s.assertions.map((a) => [a.name, a.status, a.message]) });
    assert.deepEqual(judged(replay.summary), judged(run.summary));
    if (!c.clusterReasons) assert.deepEqual(judged(cluster.summary), judged(run.summary));
    assert.equal(cluster.summary.cluster.run, 'verdict-paths', 'the cluster section stays in the summary');
    assert.match(fs.readFileSync(path.join(cluster.dir, 'report.md'), 'utf8'), /\n## Nodes\n/);
  });
}

test('regression: a cluster run whose merged nodes lost events past allow_lost fails, as the same run on one machine does', async () => {
  const c = CASES.find((x) => x.name === 'lost events past allow_lost')!;
  const { loaded } = loadCase(c);
  const { summary, dir } = await judgeAsCluster(loaded, c);
  // 4 + 4 lost on the nodes, 5 allowed: each node alone is under the limit, the run is not
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'n1', 'raw', 'opens.meta.json'), 'utf8')).lost, 4);
  assert.equal(summary.status, 'failed');
  assert.equal(exitCodeFor(summary), 1);
  assert.match(summary.reasons[0], /^step opens lost 8 events in the kernel/);
});

test('the terminal report, made from the same summary, does not call events lost past allow_lost allowed', async () => {
  const c = CASES.find((x) => x.name === 'lost events past allow_lost')!;
  const { loaded } = loadCase(c);
  const past = await judgeAsRun(loaded, c);
  assert.doesNotMatch(renderTerminal(past.summary, past.dir), /lost events allowed/);
  const within = { ...c, recipe: c.recipe.replace('allow_lost: 5', 'allow_lost: 8') };
  const ok = await judgeAsRun(loadCase(within).loaded, within);
  assert.equal(ok.summary.status, 'passed');
  assert.match(renderTerminal(ok.summary, ok.dir), /lost events allowed \(allow_lost: 8\)/);
});

test('--update-baseline reaches the baseline on every path: the run passes and the file gains the new keys', async () => {
  const c = CASES.find((x) => x.name === 'a baseline with new keys')!;
  for (const how of ['run', 'replay', 'cluster'] as const) {
    const { loaded, recipeDir } = loadCase(c);
    const r = how === 'run' ? await judgeAsRun(loaded, c, { updateBaseline: true }) : how === 'replay' ? await judgeAsReplay(loaded, c, { updateBaseline: true }) : await judgeAsCluster(loaded, c, { updateBaseline: true });
    assert.equal(r.summary.status, 'passed', `${how}: ${JSON.stringify(r.summary.reasons)}`);
    assert.equal(r.summary.steps[0].baseline?.updated, true, how);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(recipeDir, 'execs-baseline.json'), 'utf8')), ['cc', 'curl', 'make', 'sh'], how);
  }
});

test('a cluster adds its nodes’ reasons: a missing node fails a run that would pass, unless cluster.allow_missing_nodes', async () => {
  const clean = CASES[0];
  const { loaded } = loadCase(clean);
  const { summary } = await judgeAsCluster(loaded, clean, { missing: ['n3'] });
  assert.equal(summary.status, 'failed');
  assert.equal(exitCodeFor(summary), 1);
  assert.deepEqual(summary.reasons, ['node n3 missing: no agent started the run within 30 s (is the DaemonSet\'s pod running on this node?)']);
  assert.equal(summary.error, '1 node failed or had no agent: n3');
  const allowed = { ...clean, recipe: clean.recipe.replace('duration: 1s\n', 'duration: 1s\ncluster: { allow_missing_nodes: true }\n') };
  const ok = await judgeAsCluster(loadCase(allowed).loaded, allowed, { missing: ['n3'] });
  assert.equal(ok.summary.status, 'passed', JSON.stringify(ok.summary.reasons));
  assert.deepEqual(ok.summary.cluster.nodes.map((n) => n.phase), ['Succeeded', 'Succeeded', 'Missing']);
});

test('an abort while evaluating ends the run interrupted by its signal on the run path and the cluster path alike', async () => {
  const c = CASES.find((x) => x.name === 'a failed assertion')!;
  const { loaded } = loadCase(c);
  const abort = new AbortController();
  abort.abort('SIGTERM');
  const run = await judgeAsRun(loaded, c, { signal: abort.signal });
  const cluster = await judgeAsCluster(loaded, c, { signal: abort.signal });
  for (const s of [run.summary, cluster.summary]) {
    assert.equal(s.status, 'interrupted');
    assert.equal(s.signal, 'SIGTERM');
    assert.deepEqual(s.reasons, ['interrupted by SIGTERM']);
    assert.equal(exitCodeFor(s), 143);
  }
});

test('a cluster cancelled during capture evaluates everything its nodes sent: the abort that cancelled it does not stop the evaluation', async () => {
  const c = { ...CASES.find((x) => x.name === 'a failed assertion')!, run: { signal: 'SIGINT' } };
  const { loaded } = loadCase(c);
  const abort = new AbortController();
  abort.abort('SIGINT');
  const { summary } = await judgeAsCluster(loaded, c, { signal: abort.signal });
  assert.equal(summary.status, 'interrupted');
  assert.deepEqual(summary.reasons, ['interrupted by SIGINT']);
  assert.equal(summary.assertions[0].status, 'failed', summary.assertions[0].message);
  assert.equal(exitCodeFor(summary), 130);
});

test('the JUnit file is written by the judge on every path (the recipe’s junit:, or --junit), from the redacted summary', async () => {
  const c = CASES.find((x) => x.name === 'a secret in an event')!;
  const withJunit = { ...c, recipe: c.recipe.replace('duration: 1s\n', 'duration: 1s\njunit: junit.xml\n') };
  const { loaded } = loadCase(withJunit);
  const run = await judgeAsRun(loaded, withJunit);
  const replay = await judgeAsReplay(loaded, withJunit);
  const cluster = await judgeAsCluster(loaded, withJunit);
  for (const [how, r] of [['run', run], ['replay', replay], ['cluster', cluster]] as const) {
    const xml = fs.readFileSync(path.join(r.dir, 'junit.xml'), 'utf8');
    assert.match(xml, /<testcase[^>]*name="no deploy"[\s\S]*?<failure/, how);
    assertNoSecret(r.dir, how);
  }
  // a cluster node writes none: the CLI writes the run's
  assert.ok(!fs.existsSync(path.join(cluster.dir, 'n1', 'junit.xml')));
  const other = path.join(tmp(), 'ci.xml');
  await judgeAsRun(loaded, withJunit, { junit: other });
  assert.match(fs.readFileSync(other, 'utf8'), /<testsuite/);
});
