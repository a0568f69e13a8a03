/**
 * `gadget-run run recipe.yaml --cluster [--node N]... [-n NS] [-p POD] [-c CONTAINER] [-l k=v]...`
 * Creates a GadgetRun in the `gadget` namespace for the selected nodes (every
 * node by default), watches each node's answer (progress per node), and when all
 * are done or missing: downloads each node's results into DIR/<node>/, merges
 * their captured events (each carries `node`) into DIR/raw and judges the merge
 * with the function a local run uses (judge.ts), the nodes' failures added.
 * A node that fails, or has no agent that starts the run within attach_timeout,
 * fails the run unless the recipe says cluster.allow_missing_nodes.
 * Ctrl-C sets spec.cancel: every node stops, uploads what it captured, and the
 * CLI merges that; a second Ctrl-C exits at once.
 */
import fs from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Watch } from '@kubernetes/client-node';
import { RAW_DIR, rawEventsPath, rawMetaPath, readMeta, type RunMeta, type StepMeta } from '../runner/capture.ts';
import { parseDuration } from '../steps/duration.ts';
import { judge, signalName } from '../runner/judge.ts';
import { readContainerTable } from '../runner/containers.ts';
import type { RawPart } from '../runner/enrich.ts';
import { CONTAINERS_FILE, mergeTables } from '../containers/table.ts';
import type { LoadedRecipe } from '../runner/recipe.ts';
import type { StepStatus, Summary } from '../runner/summary.ts';
import { TOOL_VERSION } from '../runner/version.ts';
import { Api, apiMessage, loadKubeConfig, MERGE_PATCH, RETRY, statusOf, withRetry } from './client.ts';
import { API_VERSION, GROUP, KIND, NAMESPACE, NODE_PLURAL, PLURAL, VERSION, type GadgetRun, type GadgetRunNode, type NodeResult, type Selection } from './crd.ts';
import { DEFAULT_FETCH_CONCURRENCY, downloadResults, RUN_LABEL, safeNodeDir } from './results.ts';
import { fetchServed, tokenHash } from './serve.ts';
import { randomBytes } from 'node:crypto';
import { dnsLabel } from '../util/k8s-names.ts';

export const DEFAULT_ATTACH_TIMEOUT_MS = 30_000;
const TERMINAL = new Set(['Succeeded', 'Failed', 'Cancelled']);

export interface ClusterRunOptions {
  outDir: string;
  /** the recipe's text as given (agents parse it themselves) */
  text: string;
  nodes?: string[];
  selector?: Selection;
  maxDuration?: string;
  /** --update-baseline: write the baselines from the merged keys */
  updateBaseline?: boolean;
  /** --junit FILE */
  junit?: string;
  log: (line: string) => void;
  /** --run-namespace: where the GadgetRun and its results live (default gadget); the agents must be deployed for it (deploy --run-namespace) */
  namespace?: string;
  /** --inline-limit: a node's packed result above it is fetched from its agent, not stored (default: the recipe's cluster.inline_limit, 1MiB) */
  inlineLimit?: string;
  /** --fetch-concurrency: nodes whose results are fetched (served ones through port-forwards) and unpacked at once (default 8) */
  fetchConcurrency?: number;
  /** aborting cancels the run on every node (the CLI wires Ctrl-C here) */
  signal?: AbortSignal;
  api?: Api;
}

export interface NodeOutcome {
  node: string;
  phase: NodeResult['phase'] | 'Missing';
  message?: string;
  status?: string;
  /** ms from the run's creation to the node's Running report (or its final one, when that came first) */
  attachedMs?: number;
  /** requests the node's agent sent for this run (its report), in all and by "verb resource" */
  apiCalls?: number;
  apiCallsByVerb?: Record<string, number>;
  /** the selection's pods the node found (-n/-p/-c/-l) */
  pods?: string[];
  /** the node's result ConfigMaps and the bytes of their data in the API server (base64, as etcd stores them) */
  configMaps?: number;
  storedBytes?: number;
  /** steps whose events did not all fit under cluster.max_result_bytes */
  truncated?: string[];
  /** bytes fetched from the node's agent through its pod's port-forward (above the inline limit: not in etcd) */
  servedBytes?: number;
}

export interface ClusterSummary extends Summary {
  cluster: {
    run: string;
    nodes: NodeOutcome[];
    /** ms from `run --cluster` start to every node attached (absent when one never did) */
    allAttachedMs?: number;
    /** ms from `run --cluster` start to every node done, and to their results downloaded and merged */
    allDoneMs: number;
    mergedMs: number;
    /** requests the CLI itself made */
    cliApiCalls: number;
    /** what the run left in the API server (etcd) until the GadgetRun is deleted: every node's result ConfigMaps and their data's bytes */
    apiServer: { configMaps: number; bytes: number };
  };
}

function runName(recipe: string): string {
  return `${dnsLabel(recipe, 'run', 40)}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export async function runOnCluster(loaded: LoadedRecipe, opts: ClusterRunOptions): Promise<ClusterSummary> {
  const t0 = performance.now();
  const started = Date.now();
  const { recipe } = loaded;
  const api = opts.api ?? new Api(loadKubeConfig());
  const log = opts.log;
  const ns = opts.namespace ?? NAMESPACE;
  const attachTimeoutMs = recipe.cluster?.attach_timeout === undefined ? DEFAULT_ATTACH_TIMEOUT_MS : parseDuration(recipe.cluster.attach_timeout);

  let nodes = opts.nodes?.length ? opts.nodes : undefined;
  if (!nodes) {
    const list = await api.count('list nodes', () => api.core.listNode());
    nodes = list.items.map((n) => n.metadata!.name!).sort();
  }
  if (!nodes.length) throw new Error('the cluster has no nodes to run on');
  // runs whose time is up (finished past their ttl, or abandoned past their bound) go first: their ConfigMaps follow by owner
  await sweepExpired(api, log, ns);
  const ttlMs = recipe.cluster?.ttl === undefined ? DEFAULT_TTL_MS : parseDuration(recipe.cluster.ttl);
  // until the CLI says it is done: the longest the run can take (an unbounded one: a day), then its ttl
  const boundMs = opts.maxDuration ? parseDuration(opts.maxDuration) : recipe.duration !== undefined ? parseDuration(recipe.duration) : 24 * 3600_000;
  const name = runName(recipe.name);
  // only this process knows the token; the run says its hash, which the agents check (serve.ts)
  const fetchToken = randomBytes(32).toString('base64url');
  const run: GadgetRun = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name,
      namespace: ns,
      labels: { 'gadget-run.dev/recipe': dnsLabel(recipe.name, 'run', 40) },
      annotations: { [EXPIRES_ANNOTATION]: new Date(Date.now() + attachTimeoutMs + boundMs + ttlMs).toISOString() },
    },
    spec: { recipe: opts.text, nodes, ...(opts.selector ? { selector: opts.selector } : {}), ...(opts.maxDuration ? { maxDuration: opts.maxDuration } : {}), ...(opts.inlineLimit ? { inlineLimit: opts.inlineLimit } : {}), fetchTokenHash: tokenHash(fetchToken) },
  };
  try {
    await api.count('create gadgetruns', () => api.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, body: run }));
  } catch (err) {
    throw new Error(`cannot create the GadgetRun in namespace ${ns}: ${apiMessage(err)} (is gadget-run deployed${ns === NAMESPACE ? '' : ` for it: gadget-run deploy --run-namespace ${ns}`}? gadget-run deploy | kubectl apply -f -)`, { cause: err });
  }
  log(`GadgetRun ${ns}/${name} on ${nodes.length} node${nodes.length === 1 ? '' : 's'}: ${nodes.length > 8 ? `${nodes.slice(0, 8).join(', ')}, …` : nodes.join(', ')}`);

  const outcomes = new Map<string, NodeOutcome>(nodes.map((n) => [n, { node: n, phase: 'Missing' } as NodeOutcome]));
  const seen = new Map<string, NodeResult>();
  let allAttachedMs: number | undefined;
  let cancelled = false;
  const cancel = async () => {
    if (cancelled) return;
    cancelled = true;
    log('cancelling the run on every node (they upload what they captured)');
    try {
      // idempotent: a busy API server's 5xx is retried, or the nodes would run on
      await withRetry(api, 'patch gadgetruns', () =>
        api.custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name, body: { spec: { cancel: true } } }, MERGE_PATCH),
        { ...RETRY, log },
      );
    } catch (err) {
      log(`could not cancel: ${apiMessage(err)}`);
    }
  };
  if (opts.signal?.aborted) void cancel();
  opts.signal?.addEventListener('abort', () => void cancel(), { once: true });

  // every node is done when it reported a terminal phase, or never attached in time
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    let abortWatches = () => {};
    // why following the run failed: set before the run is cancelled, whose own answers would end the wait without it
    let failure: Error | undefined;
    const finish = (err: Error | undefined = failure) => {
      if (settled) return;
      settled = true;
      clearTimeout(attachTimer);
      abortWatches();
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      const attachedAll = seen.size >= nodes!.length && nodes!.every((n) => seen.has(n));
      if (attachedAll && allAttachedMs === undefined) {
        allAttachedMs = Math.round(performance.now() - t0);
        log(`all ${nodes!.length} nodes attached after ${allAttachedMs} ms`);
      }
      const attachExpired = performance.now() - t0 > attachTimeoutMs;
      if (nodes!.every((n) => { const r = seen.get(n); return r ? TERMINAL.has(r.phase) : attachExpired || cancelled; })) finish();
    };
    const onNode = (node: string, r: NodeResult) => {
      const before = seen.get(node);
      if (before?.phase === r.phase) return;
      // the final answer of a node may come before its Running one (coalesced, or from two sources)
      if (before && TERMINAL.has(before.phase)) return;
      const o = outcomes.get(node) ?? { node, phase: 'Missing' };
      o.phase = r.phase;
      o.message = r.message;
      o.status = r.status;
      if (!before) o.attachedMs = Math.round(performance.now() - t0);
      outcomes.set(node, o);
      if (nodes!.length <= 20 || TERMINAL.has(r.phase) && r.phase !== 'Succeeded') log(`node ${node}: ${r.phase}${r.message ? ` — ${r.message}` : ''}`);
      seen.set(node, r);
    };
    const attachTimer = setTimeout(check, attachTimeoutMs + 10);
    const stops: (() => void)[] = [];
    abortWatches = () => stops.forEach((s) => s());
    // each node's answer: its GadgetRunNode (one list, then one watch of the run's label: two small events a node)
    stops.push(follow<GadgetRunNode>(api, NODE_PLURAL, ns, { labelSelector: `${RUN_LABEL}=${name}` }, {
      item: (obj) => {
        if (obj.spec?.node && obj.status?.phase) onNode(obj.spec.node, obj.status);
      },
      batch: check,
      gone: () => {},
      retry: () => !settled,
      // the nodes would run on unseen: cancel it first
      refused: (err) => {
        failure ??= new Error(`cannot follow the nodes' answers (${NODE_PLURAL}.${GROUP}) in namespace ${ns}: ${apiMessage(err)} (your role there needs get, list and watch on them: docs/kubernetes.md, "Users, teams and the lifetime of a run")`, { cause: err });
        void cancel().finally(() => finish());
      },
    }));
    // the run itself: deleted under us; and status.nodes, where agents of the release before answered
    stops.push(follow<GadgetRun>(api, PLURAL, ns, { fieldSelector: `metadata.name=${name}` }, {
      item: (obj) => {
        for (const [node, r] of Object.entries(obj.status?.nodes ?? {})) onNode(node, r);
      },
      batch: check,
      gone: () => finish(new Error(`GadgetRun ${name} was deleted while running`)),
      retry: () => !settled,
      refused: (err) => finish(new Error(`cannot watch GadgetRun ${ns}/${name}: ${apiMessage(err)}`, { cause: err })),
    }));
  });

  const allDoneMs = Math.round(performance.now() - t0);
  // results: each node's folder and report (its own objects), then the merge every assertion reads
  // results above the inline limit: from each node's agent, through the port-forward of its pod, as the caller
  // up to fetchConcurrency nodes at once, each checked against its report's size and sha256
  const downloads = await downloadResults(api, name, opts.outDir, (node, served, file) => {
    log(`node ${node}: fetching its ${mib(served.bytes)} result from ${NAMESPACE}/${served.pod} (port-forward)`);
    return api.count('get pods/portforward', () => fetchServed(api.kc, served, fetchToken, file, NAMESPACE));
  }, ns, opts.fetchConcurrency ?? DEFAULT_FETCH_CONCURRENCY);
  // every node's results are here: the run's objects may go after its ttl
  await expireAt(api, ns, name, new Date(Date.now() + ttlMs), log);
  for (const o of outcomes.values()) {
    const d = downloads.get(o.node);
    if (d) {
      o.configMaps = d.configMaps;
      o.storedBytes = d.storedBytes;
      if (d.servedBytes !== undefined) o.servedBytes = d.servedBytes;
      const cut = d.report?.steps?.filter((s) => s.status === 'truncated' && s.reason?.includes('cluster.max_result_bytes')).map((s) => s.id);
      if (cut?.length) o.truncated = cut;
    }
    if (d?.report) {
      // the whole message (the status holds a cut one), what the node found and what it cost
      if (d.report.message) o.message = d.report.message;
      if (d.report.pods) o.pods = d.report.pods;
      if (d.report.apiCalls) {
        o.apiCallsByVerb = d.report.apiCalls;
        o.apiCalls = Object.values(d.report.apiCalls).reduce((a, b) => a + b, 0);
      }
    }
    if (o.phase === 'Missing') o.message = `no agent started the run within ${attachTimeoutMs / 1000} s (is the DaemonSet's pod running on this node?)`;
    else if (d?.error) {
      o.phase = 'Failed';
      o.message = d.error;
    } else if (TERMINAL.has(o.phase) && o.phase !== 'Failed' && !d?.files) {
      o.phase = 'Failed';
      o.message = 'its results are missing from the API server';
    }
  }
  const merged = [...outcomes.values()].filter((o) => downloads.get(o.node)?.files).map((o) => o.node);
  await mergeRaw(loaded, opts.outDir, merged);
  const mergedMs = Math.round(performance.now() - t0);
  return judgeCluster(loaded, opts.outDir, {
    cluster: { run: name, nodes: [...outcomes.values()], ...(allAttachedMs !== undefined ? { allAttachedMs } : {}), allDoneMs, mergedMs, cliApiCalls: api.total, apiServer: apiServerUse(downloads) },
    started,
    ...(cancelled ? { signal: signalName(opts.signal?.reason) } : {}),
  }, { log, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.updateBaseline ? { updateBaseline: true } : {}), ...(opts.junit !== undefined ? { junit: opts.junit } : {}) });
}

interface Follower<T> {
  /** an object as listed, or as a watch event brought it (ADDED, MODIFIED) */
  item: (obj: T) => void;
  /** after a list's items, and after each watch event */
  batch: () => void;
  /** the list found nothing where it must (the run), or a watch said DELETED */
  gone: () => void;
  /** whether to go on after a watch ended */
  retry: () => boolean;
  /** the API server refused the list or the watch (401, 403) */
  refused: (err: unknown) => void;
}

/**
 * Objects of a collection as they are now (one list), then their changes from that version on
 * (one watch), listed again when the watch ends; returns a stop. Counted as `list`/`watch` of
 * the plural. A list that finds nothing under a fieldSelector (the one run) says gone().
 */
function follow<T>(api: Api, plural: string, ns: string, query: { labelSelector?: string; fieldSelector?: string }, on: Follower<T>): () => void {
  const url = `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}`;
  let stopped = false;
  let current: AbortController | undefined;
  const again = (ms: number) => setTimeout(() => void round(), ms);
  const round = async () => {
    if (stopped || !on.retry()) return;
    try {
      const list = (await api.count(`list ${plural}`, () => api.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, ...query }))) as { items: T[]; metadata?: { resourceVersion?: string } };
      if (stopped) return;
      if (query.fieldSelector && !list.items.length) return on.gone();
      for (const obj of list.items) on.item(obj);
      on.batch();
      if (stopped || !on.retry()) return;
      current = await api.count(`watch ${plural}`, () =>
        new Watch(api.kc).watch(url, { ...query, resourceVersion: list.metadata?.resourceVersion ?? '0' }, (type, obj: T) => {
          if (type === 'DELETED') {
            if (query.fieldSelector) on.gone();
            return;
          }
          if (type === 'ADDED' || type === 'MODIFIED') {
            on.item(obj);
            on.batch();
          }
        }, () => again(200)),
      );
      if (stopped) current.abort();
    } catch (err) {
      // refused: the caller's role lacks the right, and asking again will not change that
      if (statusOf(err) === 401 || statusOf(err) === 403) return on.refused(err);
      again(1000);
    }
  };
  void round();
  return () => {
    stopped = true;
    current?.abort();
  };
}

/** When a run's objects may be deleted (an ISO time): set at creation, moved to now + ttl once the CLI has the results. */
export const EXPIRES_ANNOTATION = 'gadget-run.dev/expires-at';
/** cluster.ttl when the recipe has none */
export const DEFAULT_TTL_MS = 3600_000;

async function expireAt(api: Api, ns: string, name: string, at: Date, log: (line: string) => void): Promise<void> {
  try {
    await withRetry(api, 'patch gadgetruns', () =>
      api.custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name, body: { metadata: { annotations: { [EXPIRES_ANNOTATION]: at.toISOString() } } } }, MERGE_PATCH),
    );
  } catch (err) {
    log(`could not set the run's expiry (it is deleted at its first one): ${apiMessage(err)}`);
  }
}

/**
 * Deletes the GadgetRuns of the namespace whose expiry has passed (cancelled, finished past
 * their ttl, or abandoned by a CLI that died); the API server's garbage collector then deletes
 * their result ConfigMaps (owner references). Runs without the annotation (a runbook's) stay.
 */
export async function sweepExpired(api: Api, log: (line: string) => void, ns = NAMESPACE, now = Date.now()): Promise<string[]> {
  let list: { items?: GadgetRun[] };
  try {
    list = (await api.count('list gadgetruns', () => api.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL }))) as { items?: GadgetRun[] };
  } catch (err) {
    log(`could not list the runs to delete expired ones: ${apiMessage(err)}`);
    return [];
  }
  const expired = (list.items ?? []).filter((r) => {
    const at = Date.parse(r.metadata.annotations?.[EXPIRES_ANNOTATION] ?? '');
    return Number.isFinite(at) && at <= now && !r.metadata.deletionTimestamp;
  });
  const deleted: string[] = [];
  for (const r of expired) {
    try {
      await api.count('delete gadgetruns', () => api.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name: r.metadata.name, propagationPolicy: 'Background' }));
      deleted.push(r.metadata.name);
    } catch (err) {
      // another CLI's sweep got there first, or this user may not delete: the next sweep tries again
      if ((err as { code?: number }).code !== 404) log(`could not delete the expired run ${r.metadata.name}: ${apiMessage(err)}`);
    }
  }
  if (deleted.length) log(`deleted ${deleted.length} expired run${deleted.length === 1 ? '' : 's'} (their results go with them): ${deleted.join(', ')}`);
  return deleted;
}

/** What the cluster run knows besides the merged raw/: its nodes, its timings, whether it was cancelled. */
export interface ClusterCapture {
  cluster: ClusterSummary['cluster'];
  /** Date.now() when `run --cluster` started */
  started: number;
  /** the signal that cancelled the run on every node */
  signal?: string;
}

/**
 * The verdict over the merged DIR/raw, by the same judge as a local run (src/runner/judge.ts):
 * lost events, baselines, redaction and an abort work as they do there. What only the
 * cluster knows adds reasons: a node that failed or never started the run fails it
 * unless the recipe says cluster.allow_missing_nodes.
 */
export async function judgeCluster(loaded: LoadedRecipe, dir: string, capture: ClusterCapture, opts: ClusterJudgeOptions): Promise<ClusterSummary> {
  const nodes = capture.cluster.nodes;
  const bad = loaded.recipe.cluster?.allow_missing_nodes === true ? [] : nodes.filter((o) => o.phase === 'Failed' || o.phase === 'Missing');
  const run: RunMeta = {
    tool_version: TOOL_VERSION,
    node: `cluster (${nodes.length} node${nodes.length === 1 ? '' : 's'})`,
    kernel: '',
    startedAt: new Date(capture.started).toISOString(),
    ...(capture.signal ? { signal: capture.signal } : {}),
  };
  // a cancel during capture is in run.signal and must not stop the evaluation of what the nodes sent;
  // one that comes while evaluating stops it, as Ctrl-C does locally
  const signal = capture.signal ? undefined : opts.signal;
  const summary = await judge(loaded, dir, run, {
    log: opts.log,
    ...(signal ? { signal } : {}),
    started: capture.started,
    ...(opts.updateBaseline ? { updateBaseline: true } : {}),
    ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
    extra: {
      reasons: nodeReasons(bad),
      ...(bad.length ? { error: `${bad.length} node${bad.length === 1 ? '' : 's'} failed or had no agent: ${bad.map((o) => o.node).join(', ')}` } : {}),
      fields: { cluster: capture.cluster },
      markdown: (s) => renderNodes(s as ClusterSummary, 'md'),
    },
  });
  return summary as ClusterSummary;
}

/** Every node's result ConfigMaps and their bytes: what the run leaves in etcd until the GadgetRun is deleted. */
export function apiServerUse(downloads: Map<string, { configMaps: number; storedBytes: number }>): { configMaps: number; bytes: number } {
  let configMaps = 0;
  let bytes = 0;
  for (const d of downloads.values()) {
    configMaps += d.configMaps;
    bytes += d.storedBytes;
  }
  return { configMaps, bytes };
}

export interface ClusterJudgeOptions {
  log: (line: string) => void;
  /** the CLI's Ctrl-C: once the nodes are done, it stops the evaluation */
  signal?: AbortSignal;
  /** --update-baseline */
  updateBaseline?: boolean;
  /** --junit FILE */
  junit?: string;
}

/** One line per node that fails the run, with what it said; at scale the first ones and a count. */
function nodeReasons(bad: NodeOutcome[]): string[] {
  const lines = bad.slice(0, MAX_NODE_REASONS).map((o) => `node ${o.node} ${o.phase === 'Missing' ? 'missing' : 'failed'}${o.message ? `: ${o.message}` : ''}`);
  if (bad.length > MAX_NODE_REASONS) lines.push(`${bad.length - MAX_NODE_REASONS} more nodes failed or missing (summary.json: cluster.nodes)`);
  return lines;
}
const MAX_NODE_REASONS = 20;

/** Step statuses from best to worst for merging: the merged step is as bad as its worst node that ran. */
const RAN: StepStatus[] = ['ok', 'interrupted', 'truncated'];

/**
 * DIR/raw/<step>.{ndjson,meta.json}: every node's events as the node captured
 * them, one node after another (streamed: a file is never held whole), and one
 * meta for them all whose `parts` say which bytes came from which node;
 * DIR/raw/containers.json: every node's container table, its rows naming their
 * node. Evaluation's enrich stage (src/runner/enrich.ts) gives each event its
 * node and, by cgroup id in that node's rows, its container and pod.
 */
export async function mergeRaw(loaded: LoadedRecipe, dir: string, nodes: string[]): Promise<void> {
  const raw = path.join(dir, RAW_DIR);
  fs.rmSync(raw, { recursive: true, force: true });
  fs.mkdirSync(raw, { recursive: true });
  const tables = nodes.flatMap((node) => {
    const table = readContainerTable(path.join(dir, safeNodeDir(node), RAW_DIR));
    return table ? [{ node, table }] : [];
  });
  if (tables.length) fs.writeFileSync(path.join(raw, CONTAINERS_FILE), JSON.stringify(mergeTables(tables), null, 2) + '\n');
  for (const spec of loaded.recipe.steps) {
    const metas = nodes.map((n) => ({ node: n, meta: readMeta(path.join(dir, safeNodeDir(n)), spec.id) })).filter((m): m is { node: string; meta: StepMeta } => !!m.meta);
    if (!metas.length) continue;
    const ran = metas.filter((m) => RAN.includes(m.meta.status));
    const parts: RawPart[] = [];
    const out = fs.createWriteStream(rawEventsPath(dir, spec.id));
    try {
      for (const m of ran) {
        const file = rawEventsPath(path.join(dir, safeNodeDir(m.node)), spec.id);
        if (!fs.existsSync(file)) continue;
        const bytes = await appendFile(out, file);
        if (bytes) parts.push({ node: m.node, bytes, events: m.meta.events });
      }
    } finally {
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    const first = metas[0].meta;
    const fields = [...new Set(metas.flatMap((m) => m.meta.fields))];
    const worst = ran.length ? ran.map((m) => m.meta.status).sort((a, b) => RAN.indexOf(b) - RAN.indexOf(a))[0] : first.status;
    const notRan = metas.filter((m) => !RAN.includes(m.meta.status));
    const cutShort = ran.filter((m) => m.meta.status === 'truncated' || (m.meta.status === 'interrupted' && m.meta.reason));
    const meta: StepMeta = {
      id: spec.id,
      gadget: first.gadget,
      fields,
      status: worst,
      events: ran.reduce((n, m) => n + m.meta.events, 0),
      lost: ran.reduce((n, m) => n + m.meta.lost, 0),
      ...(ran.some((m) => m.meta.truncated) ? { truncated: ran.reduce((n, m) => n + (m.meta.truncated ?? 0), 0) } : {}),
      // a node that did not run, whose events were cut (its meta says why: the result cap, max_bytes),
      // or that stopped early for a reason of its own (its agent replaced during the run)
      ...(notRan.length || cutShort.length
        ? { reason: [...notRan, ...cutShort].map((m) => `${m.node}: ${m.meta.status}${m.meta.reason ? ` (${m.meta.reason})` : ''}`).join('; ') }
        : {}),
      // a triggered step's instances ran on each node on its own: every one, naming its node
      ...(ran.some((m) => m.meta.instances) ? { instances: ran.flatMap((m) => (m.meta.instances ?? []).map((i) => ({ ...i, node: m.node }))) } : {}),
      ...(ran.some((m) => m.meta.suppressed) ? { suppressed: ran.reduce((n, m) => n + (m.meta.suppressed ?? 0), 0) } : {}),
      ...(metas.some((m) => m.meta.warnings?.length) ? { warnings: metas.flatMap((m) => (m.meta.warnings ?? []).map((w) => `${m.node}: ${w}`)) } : {}),
      ...(first.ended ? { ended: first.ended } : {}),
      durationMs: Math.max(...metas.map((m) => m.meta.durationMs)),
      ...(first.workload ? { workload: first.workload } : {}),
      // every node was given the same selection (src/k8s/agent.ts scopeToNode)
      ...(first.documents ? { documents: first.documents } : {}),
      parts,
    };
    fs.writeFileSync(rawMetaPath(dir, spec.id), JSON.stringify(meta, null, 2) + '\n');
  }
}

/**
 * Appends a node's raw file to the merge through a stream; a last line
 * without its newline gets one, so the next node's first event is not glued
 * to it. Returns the bytes appended.
 */
async function appendFile(out: fs.WriteStream, file: string): Promise<number> {
  let bytes = 0;
  let last = 10;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 16 }) as AsyncIterable<Buffer>) {
    if (!out.write(chunk)) await once(out, 'drain');
    bytes += chunk.length;
    last = chunk[chunk.length - 1];
  }
  if (bytes && last !== 10) {
    if (!out.write('\n')) await once(out, 'drain');
    bytes++;
  }
  return bytes;
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

export function renderNodes(summary: ClusterSummary, style: 'text' | 'md' = 'text'): string {
  const rows = summary.cluster.nodes;
  const failed = rows.filter((r) => r.phase !== 'Succeeded');
  const lines = [style === 'md' ? '\n## Nodes\n' : `nodes: ${rows.length - failed.length}/${rows.length} succeeded${summary.cluster.allAttachedMs !== undefined ? `, all attached after ${summary.cluster.allAttachedMs} ms` : ''}`];
  const cut = rows.filter((r) => r.truncated?.length);
  // at scale, the ones that need a look; the full table is in summary.json
  for (const r of rows.length > 20 ? [...new Set([...failed, ...cut])] : rows) {
    const stored = r.configMaps ? `, ${r.configMaps} ConfigMap${r.configMaps === 1 ? '' : 's'} ${mib(r.storedBytes ?? 0)}` : '';
    const served = r.servedBytes !== undefined ? `, ${mib(r.servedBytes)} fetched from its agent (above the inline limit)` : '';
    const truncated = r.truncated?.length ? `, cut at cluster.max_result_bytes: ${r.truncated.join(', ')} truncated` : '';
    lines.push(`${style === 'md' ? '- ' : '  '}${r.node}: ${r.phase}${r.status ? ` (${r.status})` : ''}${stored}${served}${truncated}${r.message ? ` — ${r.message}` : ''}`);
  }
  const use = summary.cluster.apiServer;
  if (use) lines.push(`${style === 'md' ? '\n' : ''}left in the API server until the GadgetRun is deleted: ${use.configMaps} ConfigMap${use.configMaps === 1 ? '' : 's'}, ${mib(use.bytes)}`);
  return lines.join('\n') + '\n';
}
