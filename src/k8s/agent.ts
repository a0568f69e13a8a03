/**
 * `gadget-run agent`: what the DaemonSet runs on every node. It watches the
 * GadgetRuns in the `gadget` namespace, runs those meant for its node through
 * the ordinary run path (runRecipe: capture, then evaluate), uploads its
 * folder as captured and its full report (results.ts; the CLI's evaluation
 * names each event's node and pod: src/runner/enrich.ts)
 * and answers in a GadgetRunNode of its own (crd.ts): created Running once its
 * steps are attached, patched once with its final phase. It never writes the
 * run itself, which every node reads: N nodes writing one object is N writers on
 * one etcd key (docs/kubernetes.md, "Scale: 500 nodes"). A run
 * whose spec.cancel turns true is stopped as Ctrl-C stops a local run: what was
 * captured is kept and uploaded. On SIGTERM (the DaemonSet's rolling update
 * replacing it, a node drain) it stops its runs the same way, uploads what they
 * captured into the API server (never served from a pod that is going away) and
 * answers Failed with AGENT_REPLACED: the cluster verdict fails closed for that
 * node instead of judging a partial capture as whole, or losing it.
 * The agent watches its node's pods too (pods.ts): every step's containers
 * gain their pod's fields, and a run's selection (-n/-p/-c/-l) becomes each
 * step's container selection, the kernel's set of cgroup ids.
 * Its options (the node from NODE_NAME, --fake for scale tests, --objects) are read by
 * `gadget-run agent` in src/cli/commands.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { makeInformer, type KubernetesListObject } from '@kubernetes/client-node';
import type { GadgetDefinition, StepContext, StepSession } from '../steps/types.ts';
import { defaultSources, type ContainerSource } from '../containers/enrichment.ts';
import type { ContainerSelection } from '../containers/selection.ts';
import { parseDuration, parseSize } from '../steps/duration.ts';
import { spoolOf } from '../steps/modes/mode.ts';
import { rawMetaPath, readMeta } from '../runner/capture.ts';
import { parseRecipe, RecipeError, type Limits, type LoadedRecipe } from '../runner/recipe.ts';
import { runRecipe } from '../runner/run.ts';
import type { Summary } from '../runner/summary.ts';
import { NOT_CAPTURED } from '../runner/verdict.ts';
import { Api, apiMessage, Latest, loadKubeConfig, MERGE_PATCH, reasonOf, RETRY, statusOf, withRetry } from './client.ts';
import { API_VERSION, GROUP, KIND, NAMESPACE, NODE_KIND, NODE_PLURAL, nodeStatus, PLURAL, VERSION, type GadgetRun, type GadgetRunNode, type NodeReport, type NodeResult, type Selection } from './crd.ts';
import { dnsSubdomain } from '../util/k8s-names.ts';
import { NodePods } from './pods.ts';
import { cutReason, DEFAULT_INLINE_LIMIT, DEFAULT_MAX_RESULT_BYTES, NODE_LABEL, nodeKey, RUN_LABEL, uploadResults, type ServeChoice } from './results.ts';
import { ResultServer, servedPath } from './serve.ts';

export interface AgentOptions {
  node: string;
  objectDir: string;
  fake: boolean;
  /** where runs spool and evaluate */
  workDir: string;
  /** file written once the agent is watching (the DaemonSet's readiness probe) */
  readyFile?: string;
  /** namespaces whose GadgetRuns it follows (GADGET_RUN_NAMESPACES; default gadget): a Role there lets it answer (deploy --run-namespace) */
  namespaces?: string[];
  /** what a run may ask of the node (--limit-ring, --limit-output; the DaemonSet gives AGENT_LIMITS) */
  limits?: Limits;
  /** the agent's pod (POD_NAME): with it, results above the inline limit are served through its port-forward (serve.ts) */
  pod?: string;
  log: (line: string) => void;
}

export class Agent {
  readonly api: Api;
  private readonly active = new Map<string, AbortController>();
  private readonly done = new Set<string>();
  private readonly informers: ReturnType<typeof makeInformer<GadgetRun>>[] = [];
  private readonly running = new Set<Promise<void>>();
  /** the node's pods (none with --fake: fake steps have no containers to name) */
  private readonly pods?: NodePods;
  /** per run: its GadgetRunNode's status, latest value only (Latest), and whether the object exists */
  private readonly reporters = new Map<string, { latest: Latest<NodeResult>; created: boolean }>();
  /** runs a list (not a watch event) brought that this agent has not seen: ours from before a restart, or new */
  private readonly listed = new Set<string>();
  /** runs whose node answer is being read (resume): their newest version, which begin() takes (a cancel meanwhile) */
  private readonly resuming = new Map<string, GadgetRun>();
  /** results being served (above the inline limit) until fetched or expired */
  private readonly servers = new Set<ResultServer>();
  /** set by stop(): the process is going away, runs still active end early */
  private stopping?: NodeJS.Signals;

  constructor(private readonly opts: AgentOptions, api = new Api(loadKubeConfig())) {
    this.api = api;
    if (!opts.fake) this.pods = new NodePods(api, opts.node, opts.log);
  }

  async start(): Promise<void> {
    const { api } = this;
    // the pods first: the first run's containers are named from them
    await this.pods?.start();
    const namespaces = this.opts.namespaces?.length ? this.opts.namespaces : [NAMESPACE];
    for (const ns of namespaces) {
      const list = async () => {
        const got = (await api.count('list gadgetruns', () =>
          api.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL }),
        )) as KubernetesListObject<GadgetRun>;
        // a run first seen in a list may be one this node answered before the agent restarted: consider() reads its node object first
        for (const r of got.items) if (!this.active.has(r.metadata.uid!) && !this.done.has(r.metadata.uid!)) this.listed.add(r.metadata.uid!);
        return got;
      };
      const informer = makeInformer<GadgetRun>(api.kc, `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, list);
      this.informers.push(informer);
      informer.on('add', (run) => this.consider(run));
      informer.on('update', (run) => this.consider(run));
      informer.on('delete', (run) => {
        this.resuming.delete(run.metadata.uid!);
        this.active.get(run.metadata.uid!)?.abort();
      });
      informer.on('connect', () => api.count('watch gadgetruns', async () => undefined));
      informer.on('error', (err) => {
        this.opts.log(`watch of ${ns} failed (${apiMessage(err)}); retrying in 2 s`);
        setTimeout(() => void informer.start().catch((e) => this.opts.log(`restart failed: ${apiMessage(e)}`)), 2000);
      });
      await informer.start();
    }
    if (this.opts.readyFile) fs.writeFileSync(this.opts.readyFile, `${this.opts.node}\n`);
    this.opts.log(`watching ${PLURAL} in ${namespaces.join(', ')} as node ${this.opts.node}${this.opts.fake ? ' (fake gadgets)' : ''}`);
  }

  /**
   * Stops watching and stops what runs; resolves when their results are uploaded.
   * signal: the process's (serveAgent): SIGTERM is the pod being replaced or evicted, so each
   * run's node result says it ended early (AGENT_REPLACED) and fails the cluster verdict.
   */
  async stop(signal?: NodeJS.Signals): Promise<void> {
    // first, and at once: a run ending now must know why (execute), and none may start
    this.stopping = signal ?? 'SIGINT';
    // the runner's summary names the signal (signalName reads the abort's reason)
    for (const c of this.active.values()) c.abort(this.stopping);
    for (const i of this.informers) await i.stop();
    await Promise.all(this.running);
    // a result not fetched by now will not be: the pod is going away
    for (const s of this.servers) s.close();
    await this.pods?.stop();
  }

  private consider(run: GadgetRun): void {
    // going away: a run seen now is the next agent's to answer (it finds no entry of ours and starts it)
    if (this.stopping) return;
    const uid = run.metadata.uid!;
    const node = this.opts.node;
    const nodes = run.spec?.nodes ?? [];
    if (nodes.length && !nodes.includes(node)) return;
    const active = this.active.get(uid);
    if (active) {
      if (run.spec.cancel) active.abort();
      return;
    }
    if (this.resuming.has(uid)) {
      this.resuming.set(uid, run);
      return;
    }
    if (this.done.has(uid)) return;
    this.done.add(uid);
    // answered by an agent of the release before (status.nodes of the run): nothing more to do
    if (run.status?.nodes?.[node]) return;
    if (this.listed.delete(uid)) {
      this.resuming.set(uid, run);
      void this.resume(run)
        .catch((err) => this.opts.log(`run ${run.metadata.name}: ${apiMessage(err)}`))
        .finally(() => this.resuming.delete(uid));
      return;
    }
    this.begin(run);
  }

  /**
   * A run from a list: started if this node has no answer to it yet; one this node left Running
   * (its agent restarted during the run) cannot finish now, so it says so rather than stay Running.
   */
  private async resume(run: GadgetRun): Promise<void> {
    const { api } = this;
    let mine: GadgetRunNode | undefined;
    try {
      mine = (await withRetry(api, `get ${NODE_PLURAL}`, () =>
        api.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: run.metadata.namespace ?? NAMESPACE, plural: NODE_PLURAL, name: nodeObjectName(run.metadata.name, this.opts.node) }),
        { ...RETRY, log: this.opts.log })) as GadgetRunNode;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (!mine) {
      // as it is now: cancelled or deleted while its answer was read
      const latest = this.resuming.get(run.metadata.uid!);
      if (latest) this.begin(latest);
      return;
    }
    if (mine.status?.phase !== 'Running') return;
    this.reporters.set(run.metadata.uid!, { latest: this.writer(run), created: true });
    await this.report(run, { phase: 'Failed', message: 'the agent restarted during the run' }).finally(() => this.reporters.delete(run.metadata.uid!));
  }

  private begin(run: GadgetRun): void {
    const uid = run.metadata.uid!;
    if (this.stopping) return;
    if (run.spec.cancel) {
      void this.report(run, { phase: 'Cancelled', message: 'cancelled before it started on this node' })
        .catch((err) => this.opts.log(`run ${run.metadata.name}: ${apiMessage(err)}`))
        .finally(() => this.reporters.delete(uid));
      return;
    }
    const controller = new AbortController();
    this.active.set(uid, controller);
    const p = this.execute(run, controller.signal)
      .catch((err) => this.opts.log(`run ${run.metadata.name}: ${apiMessage(err)}`))
      .finally(() => {
        this.active.delete(uid);
        this.running.delete(p);
      });
    this.running.add(p);
  }

  /**
   * Sets this node's answer: its GadgetRunNode, created with the first answer and merge-patched
   * with the next (a create whose first attempt landed after all, 409, is patched; a patch of an
   * object that is not there, 404, creates it). Retried with jittered backoff (idempotent) and
   * coalesced: while one write is on its way, a newer answer replaces the one waiting.
   */
  private report(run: GadgetRun, result: NodeResult): Promise<void> {
    const uid = run.metadata.uid!;
    let r = this.reporters.get(uid);
    if (!r) {
      r = { latest: this.writer(run), created: false };
      this.reporters.set(uid, r);
    }
    return r.latest.set(nodeStatus(result));
  }

  /** Whether this node's answer to the run was written, or is being (what its next write is). */
  private created(run: GadgetRun): boolean {
    return this.reporters.get(run.metadata.uid!)?.created ?? false;
  }

  private writer(run: GadgetRun): Latest<NodeResult> {
    const { api } = this;
    const uid = run.metadata.uid!;
    const namespace = run.metadata.namespace ?? NAMESPACE;
    const name = nodeObjectName(run.metadata.name, this.opts.node);
    return new Latest<NodeResult>(async (status, superseded) => {
      const retry = { ...RETRY, log: this.opts.log, until: superseded };
      const create = () => withRetry(api, `create ${NODE_PLURAL}`, () =>
        api.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: NODE_PLURAL, body: nodeObject(run, this.opts.node, status) }), retry);
      const patch = () => withRetry(api, `patch ${NODE_PLURAL}`, () =>
        api.custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: NODE_PLURAL, name, body: { status } }, MERGE_PATCH), retry);
      const state = this.reporters.get(uid) ?? { created: false };
      if (!state.created) {
        // from now on the next write is a patch, even while this create is still being retried
        state.created = true;
        try {
          await create();
          return;
        } catch (err) {
          if (!(statusOf(err) === 409 && reasonOf(err) === 'AlreadyExists')) {
            state.created = false;
            throw err;
          }
        }
      }
      try {
        await patch();
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        await create();
      }
    });
  }

  /**
   * Results above the inline limit are served from this pod (serve.ts) when the run
   * says how the CLI proves itself (spec.fetchTokenHash) and the agent knows its pod.
   */
  private serveChoice(run: GadgetRun, inlineLimit: number): ServeChoice | undefined {
    const { pod, workDir, log, node } = this.opts;
    const hash = run.spec.fetchTokenHash;
    if (!pod || !hash) return undefined;
    return {
      inlineLimit,
      workDir,
      serve: async (file, bytes, sha256) => {
        const { server, served } = await ResultServer.start({ file, bytes, sha256, tokenHash: hash, pod, path: servedPath(run.metadata.name, nodeKey(node)), log: (l) => log(`run ${run.metadata.name}: ${l}`) });
        this.servers.add(server);
        void server.done.then((how) => {
          this.servers.delete(server);
          if (how === 'expired') log(`run ${run.metadata.name}: its served result was not fetched within its TTL: removed`);
        });
        log(`run ${run.metadata.name}: result of ${bytes} bytes above the inline limit (${inlineLimit}): served on 127.0.0.1:${served.port} until ${served.expiresAt}`);
        return served;
      },
    };
  }

  private async execute(run: GadgetRun, signal: AbortSignal): Promise<void> {
    const { log, node } = this.opts;
    const name = run.metadata.name;
    const callsBefore = new Map(this.api.calls);
    const result: NodeReport = { node, phase: 'Running', startedAt: new Date().toISOString() };
    // `Running` is the CLI's "attached": it goes out once the runner says the steps are attached
    // (and their canaries came back), never when the run is merely picked up; a workload started on
    // "all nodes attached" must not run ahead of the programs. Not awaited: the capture goes on; on a
    // busy API server the final phase may overtake it (Latest), and a failure here is the final
    // report's to tell. A run that ends before it attaches sends its final report only.
    // Every node of a run attaches, and finishes, at about the same moment: each write waits a random
    // moment of a window that grows with the run's nodes (reportJitterMs), so a big run's burst does
    // not meet the API server's limit of requests in flight all at once.
    const nodeCount = run.spec.nodes?.length ?? 0;
    let attachedSent = false;
    let finalQueued = false;
    const observer = {
      attached: () => {
        if (attachedSent) return;
        attachedSent = true;
        // the entry as it is now (Running): the result is made final meanwhile
        const running = { ...result };
        setTimeout(() => {
          if (!finalQueued) void this.report(run, running).catch(() => {});
        }, reportJitterMs(nodeCount)).unref();
      },
      captured: () => {},
    };
    log(`run ${name}: started`);
    const dir = fs.mkdtempSync(path.join(this.opts.workDir, `run-${name}-`));
    try {
      let summary: Summary | undefined;
      let optional = new Set<string>();
      let maxResultBytes = DEFAULT_MAX_RESULT_BYTES;
      let inlineLimit = DEFAULT_INLINE_LIMIT;
      try {
        const loaded = parseRecipe(run.spec.recipe, `GadgetRun ${name}`, undefined, this.opts.limits);
        optional = new Set(loaded.recipe.steps.filter((s) => s.optional).map((s) => s.id));
        if (loaded.recipe.cluster?.max_result_bytes) maxResultBytes = parseSize(loaded.recipe.cluster.max_result_bytes);
        const limit = run.spec.inlineLimit ?? loaded.recipe.cluster?.inline_limit;
        if (limit) inlineLimit = parseSize(limit);
        const sources = this.pods ? [...defaultSources(), this.pods.source()] : undefined;
        if (run.spec.selector && this.pods) result.pods = this.pods.matching(run.spec.selector);
        summary = await runRecipe(scopeToNode(loaded, run.spec.selector, sources), {
          outDir: dir,
          objectDir: this.opts.objectDir,
          maxDurationMs: run.spec.maxDuration === undefined ? undefined : parseDuration(run.spec.maxDuration),
          signal,
          observer,
          log: (line) => log(`run ${name}: ${line}`),
          ...(this.opts.fake ? { openSession: fakeOpen(node) } : {}),
          ...(sources ? { containerSources: sources } : {}),
          // the CLI writes the run's JUnit from every node's events
          junit: false,
        });
      } catch (err) {
        result.phase = 'Failed';
        result.message = err instanceof RecipeError ? `the recipe is not valid here: ${err.message}` : (err as Error).message;
      }
      // stopped by the agent's own end, not by the run's cancel: the pod is being replaced
      const replaced = this.stopping !== undefined && signal.aborted && signal.reason === this.stopping;
      if (summary) {
        if (replaced) markReplaced(dir, summary);
        result.status = summary.status;
        result.steps = summary.steps.map((s) => ({ id: s.id, status: s.status, events: s.events, lost: s.lost, ...(s.reason ? { reason: s.reason } : {}) }));
        const failures = nodeFailures(summary, optional);
        if (replaced) failures.unshift(`${AGENT_REPLACED} (${this.stopping}): its steps were stopped early; what they captured until then is in this node's result`);
        result.phase = failures.length ? 'Failed' : signal.aborted ? 'Cancelled' : 'Succeeded';
        if (failures.length) result.message = failures.join('; ');
      }
      try {
        await uploadResults(this.api, run, node, summary ? dir : undefined, (written) => {
          if (written.chunks) Object.assign(result, { chunks: written.chunks, bytes: written.bytes });
          if (written.served) Object.assign(result, { bytes: written.bytes, served: written.served });
          if (written.chunks || written.served) result.sha256 = written.sha256;
          // what did not fit under cluster.max_result_bytes: the report says it as the uploaded metas do
          for (const c of written.cut) {
            const step = result.steps?.find((s) => s.id === c.step);
            if (step) Object.assign(step, { status: step.status === 'ok' ? 'truncated' : step.status, events: c.kept, reason: cutReason(c, maxResultBytes) });
          }
          if (written.skipped.length) result.skipped = written.skipped;
          result.finishedAt = new Date().toISOString();
          // a Running not sent by now is not sent at all: the final answer follows at once
          finalQueued = true;
          // the report goes out with the last chunk's create; the node's final answer follows it
          result.apiCalls = callsSince(callsBefore, this.api.calls, ['create configmaps', `${this.created(run) ? 'patch' : 'create'} ${NODE_PLURAL}`]);
          return result;
          // a pod going away cannot serve its result: into the API server, up to cluster.max_result_bytes
        }, { ...RETRY, log }, maxResultBytes, this.stopping ? undefined : this.serveChoice(run, inlineLimit));
      } catch (err) {
        result.phase = 'Failed';
        result.message = `could not upload the results: ${apiMessage(err)}`;
      }
      result.finishedAt ??= new Date().toISOString();
      finalQueued = true;
      await new Promise((r) => setTimeout(r, reportJitterMs(nodeCount)));
      await this.report(run, result);
      log(`run ${name}: ${result.phase}${result.message ? ` (${result.message})` : ''}`);
    } finally {
      this.reporters.delete(run.metadata.uid!);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** A node's answer object: `<run>-<node>` (a DNS subdomain; long node names by their hash, nodeKey). */
export function nodeObjectName(run: string, node: string): string {
  return dnsSubdomain(`${run}-${nodeKey(node)}`, 'node', 253);
}

/** The GadgetRunNode of a node's first answer, owned by the run (deleted with it). */
export function nodeObject(run: GadgetRun, node: string, status: NodeResult): GadgetRunNode {
  return {
    apiVersion: API_VERSION,
    kind: NODE_KIND,
    metadata: {
      name: nodeObjectName(run.metadata.name, node),
      namespace: run.metadata.namespace ?? NAMESPACE,
      labels: { [RUN_LABEL]: run.metadata.name, [NODE_LABEL]: nodeKey(node) },
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: run.metadata.name, uid: run.metadata.uid! }],
    },
    spec: { run: run.metadata.name, node },
    status,
  };
}

/**
 * Why this node's run fails the cluster run: it could not capture (an error, a required
 * step that did not run). Lost events, baselines and assertions are judged over every
 * node's events by the CLI (judgeCluster), not here.
 */
export function nodeFailures(summary: Summary, optional: ReadonlySet<string>): string[] {
  if (summary.status === 'error') return [summary.error ?? 'error'];
  return summary.steps.filter((s) => !optional.has(s.id) && NOT_CAPTURED.has(s.status)).map((s) => `step ${s.id} ${s.status}: ${s.reason ?? ''}`);
}

/** Why a node's run ended early when its agent got SIGTERM: the node's message and its interrupted steps' reason. */
export const AGENT_REPLACED = 'agent replaced during the run';

/**
 * A run stopped by the agent's SIGTERM: its interrupted steps say why, in the summary (the
 * node's report) and in the metas the CLI merges (raw/<step>.meta.json), so the merged step
 * names the node and the reason.
 */
export function markReplaced(dir: string, summary: Summary): void {
  for (const s of summary.steps) {
    if (s.status !== 'interrupted') continue;
    s.reason = s.reason ? `${AGENT_REPLACED}; ${s.reason}` : AGENT_REPLACED;
    const meta = readMeta(dir, s.id);
    if (meta?.status === 'interrupted') fs.writeFileSync(rawMetaPath(dir, s.id), JSON.stringify({ ...meta, reason: s.reason }, null, 2) + '\n');
  }
}

/**
 * A run on this node: every step that can be scoped to containers watches
 * the run's selection (-n/-p/-c/-l), narrowed by the step's own, and every
 * scope names its containers from the node's pods as well as the runtimes.
 * A gadget that selects documents (advise/network-policy) records the node
 * and writes the documents of that selection; a node-wide one is left as it is.
 */
export function scopeToNode(loaded: LoadedRecipe, selector: Selection | undefined, sources: ContainerSource[] | undefined): LoadedRecipe {
  const cluster: ContainerSelection = { ...selector };
  const selects = Object.keys(cluster).length > 0;
  const narrow = (own: ContainerSelection | undefined): ContainerSelection | undefined => (selects
    ? { ...own, ...cluster, ...(own?.labels || cluster.labels ? { labels: { ...own?.labels, ...cluster.labels } } : {}) }
    : own);
  const steps = loaded.steps.map((plan) => {
    const kind = plan.def.selects ?? 'capture';
    if (kind === 'none') return plan;
    if (kind === 'documents') {
      const documents = narrow(plan.documents);
      if (!documents) return plan;
      // the node is recorded, the workload's cgroup too
      const { containers: _recorded, ...rest } = plan;
      return { ...rest, documents };
    }
    const own = plan.containers;
    if (!selects && !own) return plan;
    const selection = narrow(own?.selection);
    return { ...plan, containers: { ...(selection ? { selection } : {}), workload: selects ? false : !!own?.workload, ...(sources ? { sources } : {}) } };
  });
  return { ...loaded, steps };
}

/** Steps that skip the kernel: each writes a few events shaped like its gadget's. */
export function fakeOpen(node: string, eventsPerStep = 10) {
  return async (def: GadgetDefinition, ctx: StepContext): Promise<StepSession> => ({
    finished: new Promise(() => {}),
    attached: 0,
    start() {},
    async stop() {
      const lines: string[] = [];
      for (let i = 0; i < eventsPerStep; i++) {
        const e: Record<string, unknown> = {};
        for (const f of def.fields) {
          e[f.name] = f.type === 'number' ? i : f.type === 'boolean' ? false : f.type === 'string[]' ? [] : f.name === 'timestamp' ? new Date().toISOString() : `fake-${node}`;
        }
        lines.push(JSON.stringify(e) + '\n');
      }
      fs.writeFileSync(spoolOf(ctx), lines.join(''));
      return { events: eventsPerStep, lost: 0, warnings: [] };
    },
  });
}

/**
 * The agent until SIGTERM (pod deletion) or Ctrl-C, then a bounded stop; the exit code.
 * `gadget-run agent` (src/cli/commands.ts) reads its options into `opts`.
 */
export async function serveAgent(opts: AgentOptions): Promise<number> {
  const { log } = opts;
  const agent = new Agent(opts);
  await agent.start();
  // SIGTERM (pod deletion) or Ctrl-C: stop watching, let active runs upload what they captured
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log(`${signal}: stopping`);
  // a run's upload may hang on an API server that went away: the pod's grace period is short
  const stopped = await Promise.race([agent.stop(signal).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), STOP_BUDGET_MS).unref())]);
  if (!stopped) log(`runs did not finish within ${STOP_BUDGET_MS / 1000} s of ${signal}: exiting anyway`);
  // the client's watch and keep-alive sockets outlive the watch itself; the process must still end
  setTimeout(() => process.exit(stopped ? 0 : 1), 1000).unref();
  return stopped ? 0 : 1;
}

/** Requests sent since before (by "verb resource"), plus one of each of next (about to be sent). */
export function callsSince(before: Map<string, number>, now: Map<string, number>, next: string[] = []): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of now) if (v - (before.get(k) ?? 0) > 0) out[k] = v - (before.get(k) ?? 0);
  for (const k of next) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/**
 * A random wait before a node's answer, up to 5 ms per node of the run and at most 2.5 s (a
 * 50-node run: up to 250 ms; 500 nodes: 2.5 s): N agents that attach or finish together would
 * otherwise send N writes in the same instant, past the API server's limit of mutating requests in
 * flight (200 by default: the rest are answered 429 and retried). Each node writes its own object,
 * so spreading is all it takes (when they all wrote the run's one object, no spread was enough:
 * docs/kubernetes.md). The capture does not wait for it, only the CLI's view of the node does.
 */
export function reportJitterMs(nodes: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(MAX_REPORT_JITTER_MS, nodes * REPORT_JITTER_PER_NODE_MS));
}
const REPORT_JITTER_PER_NODE_MS = 5;
const MAX_REPORT_JITTER_MS = 2_500;

/**
 * How long SIGTERM waits for active runs to upload before the agent exits: the DaemonSet's grace
 * (AGENT_GRACE_SECONDS, 30 s) less room for the exit itself and a slow kubelet.
 */
const STOP_BUDGET_MS = 20_000;
