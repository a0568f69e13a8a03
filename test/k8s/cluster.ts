/**
 * The Kubernetes tests' cluster: scripts/k8s-cluster.mjs builds (once, cached)
 * and starts a real single-node Kubernetes 1.20 on loopback. A test file calls
 * clusterSuite() (useCluster() in before(), the teardown in after()); the cluster
 * is stopped in after() only when that file started it (a developer's running
 * cluster is reused and left running).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import { VERSION_LABEL } from '../../src/k8s/manifests.ts';
import { isRoot } from '../helpers/kernel.ts';
import { BIN, ROOT } from '../runner/cli-helpers.ts';

// the harness is the project's zx script; its functions are what the tests call
// @ts-expect-error -- a JavaScript module without types
import * as harness from '../../scripts/k8s-cluster.mjs';
// @ts-expect-error -- a JavaScript module without types
import { lock } from '../../scripts/lock.mjs';

export const NOT_ROOT_K8S = 'needs root: starts a real Kubernetes (etcd, apiserver, containerd, kubelet) and loads BPF programs';
export const skipK8s = isRoot() ? false : NOT_ROOT_K8S;

export const KUBECTL: string = harness.kubectlPath;
export const KUBECONFIG: string = harness.kubeconfigPath;
export const NODE: string = harness.nodeName;
export const writeTokenKubeconfig: (file: string, token: string) => string = harness.writeTokenKubeconfig;

export interface Cluster {
  image: string;
  stop(): Promise<void>;
}

/**
 * One test file at a time uses the cluster, machine-wide: two (another checkout's suite, a second
 * `npm test`) share its `gadget` namespace and agents, and the one that started it stops it under
 * the other. The lock is held from before() to after(), and dies with the process.
 */
const USERS_LOCK = process.env.GADGET_RUN_K8S_USERS_LOCK ?? '/run/gadget-run-k8s-tests.lock';

export async function useCluster(): Promise<Cluster> {
  const { unlock, waitedMs } = await lock(USERS_LOCK, { what: 'the test cluster', log: (line: string) => process.stderr.write(`# ${line}\n`) });
  if (waitedMs > 1000) process.stderr.write(`# waited ${Math.round(waitedMs / 1000)} s for another user of the test cluster\n`);
  try {
    const started: boolean = await harness.up();
    const image: string = await harness.image();
    return {
      image,
      stop: async () => {
        try {
          if (started) await harness.down();
        } finally {
          unlock();
        }
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

export interface SuiteOptions {
  /** deploy the agents' DaemonSet with the test image (deployAgent) once the cluster is up */
  deploy?: boolean;
  /** in before(), once the cluster (and the agents) are up: the file's own objects */
  setup?: (cluster: Cluster) => Promise<void>;
  /** in after(), before the undeploy: remove the file's own objects (a failure still undeploys and unlocks) */
  cleanup?: () => Promise<void>;
  /** before()'s timeout (default 30 min: it includes the wait for another user of the cluster, a 500-node scale run takes 20) */
  timeoutMs?: number;
}

export interface Suite {
  /** the cluster, once before() has run */
  readonly cluster: Cluster;
  /** agents the file starts as processes (startAgent): after() stops them */
  readonly agents: AgentProcess[];
}

/**
 * The set-up every k8s test file shares, registered as the file's (or describe's) before() and
 * after(): the cluster lock and the cluster, the agents' DaemonSet when asked, and a teardown that
 * leaves nothing deployed even when a test failed half-way (the file's own objects, agent
 * processes, simulated nodes, the DaemonSet), bounded so a stuck teardown fails the file.
 */
export function clusterSuite(opts: SuiteOptions = {}): Suite {
  let cluster: Cluster | undefined;
  const agents: AgentProcess[] = [];
  before(async () => {
    if (skipK8s) return;
    cluster = await useCluster();
    if (opts.deploy) await deployAgent(cluster.image);
    await opts.setup?.(cluster);
  }, { timeout: opts.timeoutMs ?? 1_800_000 });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    // a before() that timed out waiting for the cluster lock must not tear down another file's run
    if (skipK8s || !cluster) return;
    try {
      await opts.cleanup?.();
    } finally {
      try {
        await removeSimulatedNodes();
        await gadgetRun(['undeploy', '--wait']).done;
      } finally {
        await cluster?.stop();
      }
    }
  }, { timeout: 180_000 });
  return {
    get cluster() {
      if (!cluster) throw new Error('the test cluster is not up: clusterSuite()\'s before() has not run (or the file skips without root)');
      return cluster;
    },
    agents,
  };
}

export function adminConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  return kc;
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** kubectl 1.20 (built with the cluster) as the test admin; stdin optional. */
export function kubectl(args: string[], input?: string): Promise<Run> {
  const child = spawn(KUBECTL, args, { env: { ...process.env, KUBECONFIG }, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = collect(child);
  child.stdin!.end(input ?? '');
  return done;
}

/** The real CLI as the test admin. */
export function gadgetRun(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, KUBECONFIG, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, done: collect(child) };
}

/** A ServiceAccount token from TokenRequest: the identity the agent's pod has. */
export async function serviceAccountToken(kc: KubeConfig, namespace = 'gadget', name = 'gadget-run'): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } } });
  return tr.status!.token;
}

export interface AgentProcess {
  node: string;
  child: ChildProcess;
  done: Promise<Run>;
  stop(): Promise<Run>;
}

/**
 * An agent as a process on this machine, with its own NODE_NAME, authenticated
 * as the agent's ServiceAccount (kubeconfig with the TokenRequest token).
 */
export async function startAgent(node: string, token: string, extra: string[] = [], readyTimeoutMs = 60_000, env: Record<string, string> = {}): Promise<AgentProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gadget-run-agent-${node}-`));
  const kubeconfig = writeTokenKubeconfig(path.join(dir, 'kubeconfig'), token);
  const ready = path.join(dir, 'ready');
  const child = spawn(process.execPath, [path.join(ROOT, 'build/gadget-run.mjs'), 'agent', '--work-dir', dir, '--ready', ready, ...extra], {
    cwd: ROOT,
    env: { ...process.env, KUBECONFIG: kubeconfig, NODE_NAME: node, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = collect(child);
  const t0 = Date.now();
  while (!fs.existsSync(ready)) {
    if (child.exitCode !== null || Date.now() - t0 > readyTimeoutMs) {
      const r = await Promise.race([done, new Promise<Run>((res) => setTimeout(() => res({ code: null, signal: null, stdout: '', stderr: '(still running)' }), 1000))]);
      throw new Error(`agent ${node} did not become ready: ${r.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    node,
    child,
    done,
    stop: () => stopAgentProcess(child, done, dir),
  };
}

/** SIGTERM an agent process, SIGKILL it after 25 s, remove its folder: what it printed, how it ended. */
async function stopAgentProcess(child: ChildProcess, done: Promise<Run>, dir: string): Promise<Run> {
  if (child.exitCode === null) child.kill('SIGTERM');
  // an agent that does not end on SIGTERM must not hang the suite: it fails its test instead
  const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
  const r = await done;
  clearTimeout(killer);
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

export interface AgentHost {
  nodes: string[];
  child: ChildProcess;
  done: Promise<Run>;
  stop(): Promise<Run>;
}

/**
 * Many simulated nodes' fake agents in one process (test/k8s/agent-host.ts): each its own
 * Agent with its own client, node name and the ServiceAccount's token, as startAgent's are;
 * for runs of hundreds of nodes, which one Node process per node does not fit in memory.
 */
export async function startAgentHost(nodes: string[], token: string, readyTimeoutMs = 300_000): Promise<AgentHost> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-agent-host-'));
  const kubeconfig = writeTokenKubeconfig(path.join(dir, 'kubeconfig'), token);
  const ready = path.join(dir, 'ready');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/k8s/agent-host.ts'), kubeconfig, dir, ready, ...nodes], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const done = collect(child);
  const t0 = Date.now();
  while (!fs.existsSync(ready)) {
    if (child.exitCode !== null || Date.now() - t0 > readyTimeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`agent host of ${nodes[0]}…${nodes.at(-1)} did not become ready: ${(await done).stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    nodes,
    child,
    done,
    stop: () => stopAgentProcess(child, done, dir),
  };
}

/** The API server's own CPU time so far (process_cpu_seconds_total of its /metrics). */
export async function apiServerCpuSeconds(): Promise<number> {
  const r = await kubectl(['get', '--raw', '/metrics']);
  if (r.code !== 0) throw new Error(`reading the API server's metrics: ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('process_cpu_seconds_total '));
  if (!line) throw new Error('the API server\'s metrics have no process_cpu_seconds_total');
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat; 0 once it is gone. */
export function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the fields after the command's closing parenthesis: utime and stime are the 12th and 13th
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** USER_HZ: 100 on every Linux architecture the tool runs on */
const CLOCK_TICKS = 100;

/** Polls until fn returns a value (not undefined), or fails with what it last saw. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Registers Node objects with no kubelet (simulated nodes for agents run as processes). */
export async function registerNodes(names: string[]): Promise<void> {
  const items = names.map((name) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'gadget-run.dev/simulated': 'true' } } }));
  const r = await kubectl(['apply', '-f', '-'], items.map((i) => JSON.stringify(i)).join('\n'));
  if (r.code !== 0) throw new Error(`registering nodes: ${r.stderr}`);
}

export async function removeSimulatedNodes(): Promise<void> {
  await kubectl(['delete', 'node', '-l', 'gadget-run.dev/simulated=true', '--wait=false']);
}

/**
 * The API server's own request counters (apiserver_request_total), by "verb resource[/sub] code",
 * for the gadget-run resources: what the server saw, beside what the agents counted.
 */
export async function apiServerRequests(): Promise<Map<string, number>> {
  const r = await kubectl(['get', '--raw', '/metrics']);
  if (r.code !== 0) throw new Error(`reading the API server's metrics: ${r.stderr}`);
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!['gadgetruns', 'gadgetrunnodes', 'configmaps'].includes(labels.resource)) continue;
    const key = `${labels.verb.toLowerCase()} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''} ${labels.code}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** after − before, the non-zero entries. */
export function requestDelta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of [...after].sort()) if (v - (before.get(k) ?? 0) > 0) d[k] = v - (before.get(k) ?? 0);
  return d;
}

/**
 * `deploy | kubectl apply -f -` with the test image, then wait for this node's agent pod of that
 * version to be Ready. version: another build's (its pods' version label, as a new release's
 * manifests would carry), the same image: a new revision of the DaemonSet's pod template.
 */
export async function deployAgent(image: string, version?: string): Promise<void> {
  const printed = await gadgetRun(['deploy', '--image', image, '--pull-policy', 'Never']).done;
  if (printed.code !== 0) throw new Error(`deploy failed: ${printed.stderr}`);
  // as printed, in the wire's field names (loadAllYaml would give the client's model names: `_enum`, which kubectl refuses)
  const objects = YAML.parseAllDocuments(printed.stdout).map((d) => d.toJSON()) as any[];
  const template = objects.find((o) => o.kind === 'DaemonSet').spec.template;
  if (version) template.metadata.labels[VERSION_LABEL] = version;
  const applied = await kubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
  if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
  const want = template.metadata.labels[VERSION_LABEL];
  await eventually(`the agent pod of version ${want} Ready`, async () => {
    const pods = await agentPods();
    return pods.some((p) => p.metadata.labels[VERSION_LABEL] === want && p.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')) ? true : undefined;
  }, 120_000);
}

/** The DaemonSet's pods on this node (any version, terminating ones too). */
export async function agentPods(): Promise<any[]> {
  const r = await kubectl(['-n', 'gadget', 'get', 'pods', '-l', 'app.kubernetes.io/name=gadget-run', '-o', 'json']);
  if (r.code !== 0) throw new Error(`listing the agent pods: ${r.stderr}`);
  return JSON.parse(r.stdout || '{"items":[]}').items.filter((p: any) => p.spec.nodeName === NODE);
}

/** The host pid of the agent in the DaemonSet's pod (by default this node's one): its cgroup is under its pod's UID. */
export async function agentPid(uid?: string): Promise<number> {
  const pod = uid ?? (await agentPods())[0]?.metadata.uid;
  const cmdline = (p: number) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  const pid = pod && podProcesses(pod).find((p) => cmdline(p).includes('agent'));
  if (!pid) throw new Error(`no process of the agent pod ${pod ?? '(none on this node)'} on this machine`);
  return pid;
}

/** The host processes whose cgroup is under the pod's UID: none once the pod is gone. */
export function podProcesses(uid: string): number[] {
  const found: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(uid)) found.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return found;
}

/** BPF links and perf events the agent holds: its steps' attachments (a per-process view: neighbours do not count). */
export function attachments(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (/bpf-link|perf_event/.test(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

/** A hostNetwork pod on this node running `node -e script` from the test image (its node binary). */
export function nodePod(image: string, name: string, namespace: string, labels: Record<string, string>, script: string): object {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: {
      nodeName: NODE, hostNetwork: true, terminationGracePeriodSeconds: 0,
      containers: [{ name: 'main', image, imagePullPolicy: 'Never', command: ['/usr/bin/node', '-e', script] }],
    },
  };
}

/** Applies the pods and waits until `count` pods of the label selector run with their container ready. */
export async function startPods(pods: object[], namespace: string, selector: string, count = pods.length): Promise<void> {
  const r = await kubectl(['apply', '-f', '-'], pods.map((p) => JSON.stringify(p)).join('\n'));
  if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  await eventually(`${count} pods ${selector} running`, async () => {
    const got = await kubectl(['-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json']);
    const items = JSON.parse(got.stdout || '{"items":[]}').items;
    return items.length === count && items.every((p: any) => p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready) ? true : undefined;
  }, 120_000);
}

/** `gadget-run run RECIPE --cluster --node NODE ARGS… --out OUT` of a recipe written to a temporary file; the run and its --out. */
export async function clusterRun(recipe: string, args: string[]): Promise<Run & { out: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-run-'));
  const file = path.join(dir, 'recipe.yaml');
  fs.writeFileSync(file, recipe);
  const out = path.join(dir, 'out');
  const r = await gadgetRun(['run', file, '--cluster', '--node', NODE, ...args, '--out', out]).done;
  return { ...r, out };
}
