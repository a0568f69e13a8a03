/**
 * What `gadget-run deploy` installs, as typed objects (@kubernetes/client-node
 * models), in apply order. Every RBAC rule names the call in the code that
 * needs it (agent.ts, results.ts); test/k8s/cluster.test.ts ("RBAC: …") proves the
 * agent can make those calls and nothing else.
 */
import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1DaemonSet,
  V1Namespace,
  V1PolicyRule,
  V1PriorityClass,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { GROUP, NAMESPACE, NODE_PLURAL, PLURAL, gadgetRunCrd, gadgetRunNodeCrd } from './crd.ts';
import { formatBytes } from '../steps/duration.ts';
import { TOOL_VERSION } from '../runner/version.ts';

/** the agent's V8 semi-space (MB): see the DaemonSet's command */
export const AGENT_SEMI_SPACE_MB = 2;
/**
 * The agent's V8 old space (MB): its heap is ~25 MB once loaded and its runs stream (events spool
 * to disk, packs and uploads are streamed, JSONata runs in workers with limits of their own), so
 * the cap is far above what it holds and keeps the heap from growing with the allocation rate.
 * Under a 1M-event capture the RSS peaked at 142 MB uncapped, 139–140 MB capped: the rest is node's
 * own memory and the ring buffer's mapping (docs/kubernetes.md "Limits"; agent-limits test).
 */
export const AGENT_OLD_SPACE_MB = 64;
/** how long a replaced agent has to stop its runs and upload what they captured (serveAgent: STOP_BUDGET_MS within it) */
export const AGENT_GRACE_SECONDS = 30;

export const SERVICE_ACCOUNT = 'gadget-run';
export const AGENT_NAME = 'gadget-run-agent';
export const DAEMONSET = 'gadget-run';
export const PART_OF = { 'app.kubernetes.io/part-of': 'gadget-run' };
export const AGENT_LABELS = { 'app.kubernetes.io/name': 'gadget-run', 'app.kubernetes.io/component': 'agent' };
/** the agent pods' version label: which build runs on a node, old or new, during a rolling update */
export const VERSION_LABEL = 'app.kubernetes.io/version';

/**
 * The capabilities the agent's container gets by default, and why (docs/kubernetes.md
 * has the table per gadget):
 * - BPF: bpf(2) map and program creation (every gadget)
 * - PERFMON: attaching tracepoints/raw_tp through perf events, profile/cpu's perf
 *   events, and reading kernel pointers in tracing programs (every gadget)
 * - SYS_ADMIN: BPF iterators (snapshot/process) and bpf_probe_read of other
 *   tasks' memory on kernels that predate CAP_BPF's split; setns/cgroup reads
 * - SYS_PTRACE: reading /proc/<pid> of every process on the node (snapshot/process,
 *   comm and mount-namespace enrichment)
 * - NET_RAW: packet sockets for socket-filter gadgets (trace/dns, trace/sni)
 * - NET_ADMIN: attaching socket filters / tc programs (network gadgets)
 * SYS_RESOURCE is only an option (--caps): kernels before 5.11 charge BPF maps to
 * RLIMIT_MEMLOCK and need it to raise the limit; runtimes that lack it refuse it.
 */
export const DEFAULT_CAPS = ['BPF', 'PERFMON', 'SYS_ADMIN', 'SYS_PTRACE', 'NET_RAW', 'NET_ADMIN'];

/** Host paths the agent reads, all read-only. */
export const HOST_PATHS: { name: string; host: string; mount: string }[] = [
  { name: 'cgroup', host: '/sys/fs/cgroup', mount: '/sys/fs/cgroup' },
  // no /sys/kernel/btf: the container's own sysfs shows the kernel's BTF where it has one, and a
  // hostPath of it would fail the pod on a node without (the runtime mkdirs a missing source, in sysfs)
  { name: 'tracing', host: '/sys/kernel/tracing', mount: '/sys/kernel/tracing' },
  { name: 'bpffs', host: '/sys/fs/bpf', mount: '/sys/fs/bpf' },
  { name: 'proc', host: '/proc', mount: '/host/proc' },
  // the runtime sockets (containerd, CRI-O, Docker, Podman) all live under /run
  { name: 'run', host: '/run', mount: '/host/run' },
];

/** The agent's rules in its own namespace: exactly the calls agent.ts and results.ts make. */
export const AGENT_NAMESPACED_RULES: V1PolicyRule[] = [
  // agent.ts: the informer lists GadgetRuns, then watches them
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['list', 'watch'] },
  // agent.ts report(): its node's answer, a GadgetRunNode of its own (create, then one merge patch);
  // resume(): a run found in a list after a restart, is its answer there already (get, by name)
  { apiGroups: [GROUP], resources: [NODE_PLURAL], verbs: ['create', 'get', 'patch'] },
  // results.ts uploadResults(): the run's result chunks, owned by the GadgetRun
  { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
];

/** The agent's cluster-wide rules. */
export const AGENT_CLUSTER_RULES: V1PolicyRule[] = [
  // pods.ts NodePods: the informer lists, then watches, the pods on its node (fieldSelector spec.nodeName)
  // for the events' pod fields and the kernel's container selection (-n/-p/-c/-l)
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  // pods.ts getOwner(): a pod's top owner (ReplicaSet → Deployment, Job → CronJob); only get, by name
  { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get'] },
];

/**
 * What one node's agent may take. The BPF ring buffers are kernel memory charged to the
 * container's memory cgroup (5.11+), beside the agent's own heap (bounded as the local
 * runner's: events spool to disk); the spool and the staged result live in the work emptyDir.
 * A recipe that asks for more ring than AGENT_LIMITS.ringBytes is refused on the node with the
 * reason; steps past their share of AGENT_LIMITS.outputBytes are `truncated` (max_bytes), so
 * the emptyDir never reaches its sizeLimit (which the kubelet enforces by eviction).
 */
export const AGENT_LIMITS = { ringBytes: 64 * 1024 * 1024, outputBytes: 1024 * 1024 * 1024 };
export const AGENT_RESOURCES = {
  requests: { cpu: '100m', memory: '256Mi' },
  // ring (64 MiB) + the agent (≤ 150 MB RSS under a 1M-event capture) + page cache of the spool
  limits: { cpu: '1', memory: '512Mi' },
};
/** the work emptyDir: AGENT_LIMITS.outputBytes of events, their evaluation and the staged pack */
export const WORK_SIZE_LIMIT = '2Gi';
export const PRIORITY_CLASS = 'gadget-run-agent';

export interface DeployOptions {
  image: string;
  pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  caps: string[];
  /** pods share the node's network namespace (network gadgets see the host's traffic; clusters without a pod network) */
  hostNetwork: boolean;
  /** namespaces besides gadget where users create runs and read their results: the agent gets its Role in each */
  runNamespaces: string[];
  /** a host folder of BTF files (btfgen, per kernel release) for nodes whose kernel has no /sys/kernel/btf: GADGET_RUN_BTF_DIR */
  btfDir?: string;
}

export const DEFAULT_DEPLOY: DeployOptions = {
  image: 'ghcr.io/gadget-run/gadget-run:latest',
  pullPolicy: 'IfNotPresent',
  caps: DEFAULT_CAPS,
  hostNetwork: true,
  runNamespaces: [],
};

/** A label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends) from a version string such as 1.2.0+abc. */
export function labelValue(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

const meta = (name: string, namespaced = true) => ({ name, ...(namespaced ? { namespace: NAMESPACE } : {}), labels: { ...PART_OF } });

export function manifests(opts: DeployOptions = DEFAULT_DEPLOY): KubernetesObject[] {
  const namespace: V1Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: meta(NAMESPACE, false) };
  const sa: V1ServiceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(SERVICE_ACCOUNT) };
  const subject = { kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: NAMESPACE };
  const clusterRole: V1ClusterRole = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(AGENT_NAME, false), rules: AGENT_CLUSTER_RULES };
  const clusterBinding: V1ClusterRoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: meta(AGENT_NAME, false),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: AGENT_NAME },
    subjects: [subject],
  };
  const role: V1Role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(AGENT_NAME), rules: AGENT_NAMESPACED_RULES };
  const binding: V1RoleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(AGENT_NAME),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: AGENT_NAME },
    subjects: [subject],
  };
  // a team's namespace: the same rules there (follow its runs, answer them, write their results), nothing more;
  // the namespace is the team's own and must exist
  const extra = opts.runNamespaces.filter((n) => n !== NAMESPACE);
  const teamRbac: KubernetesObject[] = extra.flatMap((ns) => [
    { ...role, metadata: { ...meta(AGENT_NAME), namespace: ns } } as V1Role,
    { ...binding, metadata: { ...meta(AGENT_NAME), namespace: ns } } as V1RoleBinding,
  ]);
  const volumes: V1Volume[] = [
    ...HOST_PATHS.map((p) => ({ name: p.name, hostPath: { path: p.host } })),
    // the root filesystem is read-only; runs spool and evaluate here
    { name: 'work', emptyDir: { sizeLimit: WORK_SIZE_LIMIT } },
    // a node without the folder fails the pod, with the reason in its events: deploy --btf-dir only where the nodes have it
    ...(opts.btfDir ? [{ name: 'btf-dir', hostPath: { path: opts.btfDir, type: 'Directory' } }] : []),
  ];
  const mounts: V1VolumeMount[] = [
    ...HOST_PATHS.map((p) => ({ name: p.name, mountPath: p.mount, readOnly: true })),
    { name: 'work', mountPath: '/tmp' },
    ...(opts.btfDir ? [{ name: 'btf-dir', mountPath: '/host/btf', readOnly: true }] : []),
  ];
  const priorityClass: V1PriorityClass = {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name: PRIORITY_CLASS, labels: { ...PART_OF } },
    // above ordinary workloads (a node the agent cannot start on is a node the run cannot see), below system-node-critical
    value: 1_000_000,
    globalDefault: false,
    description: 'gadget-run agents: one per node, scheduled before ordinary pods',
  };
  const daemonSet: V1DaemonSet = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: meta(DAEMONSET),
    spec: {
      selector: { matchLabels: AGENT_LABELS },
      // one node at a time: the old agent gets SIGTERM, stops its runs (uploads what they captured into the API
      // server, answers Failed: "agent replaced during the run") within terminationGracePeriodSeconds, then the
      // new one starts (docs/kubernetes.md "Priority and upgrades"; test/k8s/upgrade.test.ts)
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        // the version is not in the selector (immutable): a new build is a new revision of the same DaemonSet
        metadata: { labels: { ...AGENT_LABELS, ...PART_OF, [VERSION_LABEL]: labelValue(TOOL_VERSION) } },
        spec: {
          serviceAccountName: SERVICE_ACCOUNT,
          priorityClassName: PRIORITY_CLASS,
          hostPID: true,
          hostNetwork: opts.hostNetwork,
          ...(opts.hostNetwork ? { dnsPolicy: 'ClusterFirstWithHostNet' } : {}),
          // the kubelet labels every Linux node; simulated nodes (tests) have no kubelet and no label
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          // every node, whatever its taints: a node the agent skips is a node the run cannot see
          tolerations: [{ operator: 'Exists' }],
          terminationGracePeriodSeconds: AGENT_GRACE_SECONDS,
          containers: [
            {
              name: 'agent',
              image: opts.image,
              imagePullPolicy: opts.pullPolicy,
              // a small young generation: uploading a node's results allocated ~35 MB of short-lived
              // blocks and strings that V8's default 16 MB semi-spaces kept as RSS (bench/cluster-merge.ts);
              // a capped old space: V8 collects before its heap grows past what the container affords
              command: [
                '/usr/bin/node', `--max-semi-space-size=${AGENT_SEMI_SPACE_MB}`, `--max-old-space-size=${AGENT_OLD_SPACE_MB}`, '/app/build/gadget-run.mjs', 'agent',
                '--limit-ring', formatBytes(AGENT_LIMITS.ringBytes), '--limit-output', formatBytes(AGENT_LIMITS.outputBytes),
              ],
              resources: AGENT_RESOURCES,
              env: [
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                // results above the inline limit are served on the pod's loopback, fetched through its port-forward (serve.ts)
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'GADGET_RUN_HOST_PROC', value: '/host/proc' },
                ...(opts.btfDir ? [{ name: 'GADGET_RUN_BTF_DIR', value: '/host/btf' }] : []),
                ...(extra.length ? [{ name: 'GADGET_RUN_NAMESPACES', value: [NAMESPACE, ...extra].join(',') }] : []),
              ],
              securityContext: {
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { add: opts.caps },
              },
              // Ready once the agent has listed the runs and is watching (agent.ts writes the file)
              // (a node start: generous timeout on a busy node)
              readinessProbe: { exec: { command: ['/usr/bin/node', '-e', "require('fs').accessSync('/tmp/ready')"] }, periodSeconds: 3, timeoutSeconds: 15 },
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
  return [gadgetRunCrd(), gadgetRunNodeCrd(), namespace, priorityClass, sa, clusterRole, clusterBinding, role, binding, ...teamRbac, daemonSet];
}
