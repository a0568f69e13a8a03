/**
 * The Kubernetes source: what the API server says of the pods on this node,
 * joined to the containers discovered in the cgroup tree. Two keys join them:
 * - the container id: a container status's containerID is
 *   "<runtime>://<64 hex>", the id the cgroup is named after;
 * - the pod UID in the cgroup parent (kubepods/<qos>/pod<uid>/<id> with the
 *   cgroupfs driver, kubepods-<qos>-pod<uid_with_underscores>.slice with
 *   systemd): known as soon as the kubelet creates the container's cgroup,
 *   while the container id reaches the pod's status only after the kubelet's
 *   next relist (about a second after the container started).
 * So a container that starts while a step runs is attributed from its first
 * event: the kernel adds its cgroup as PENDING at mkdir, and this source names
 * it from the pod (watched before its containers start) and from the CRI's
 * annotations (runc state: the container's name in its pod).
 *
 * Nothing here talks to the API server: src/k8s/pods.ts feeds the pods in,
 * so the joins and the owner walk are tested without a cluster.
 */
import type { ContainerInfo, ContainerSource, K8sInfo } from './enrichment.ts';

/** The parts of a V1Pod this source reads (the client's type is wider). */
export interface PodView {
  metadata?: {
    uid?: string;
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    ownerReferences?: OwnerRef[];
  };
  spec?: { nodeName?: string; containers?: { name: string }[]; initContainers?: { name: string }[] };
  status?: {
    podIP?: string;
    podIPs?: { ip: string }[];
    containerStatuses?: { name: string; containerID?: string }[];
    initContainerStatuses?: { name: string; containerID?: string }[];
    ephemeralContainerStatuses?: { name: string; containerID?: string }[];
  };
}

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  controller?: boolean;
}

/** "containerd://<id>", "cri-o://<id>", "docker://<id>" → the 64-hex id; undefined for anything else. */
export function containerIdOf(containerID: string | undefined): string | undefined {
  const m = /^[a-z0-9-]+:\/\/([0-9a-f]{64})$/.exec(containerID ?? '');
  return m?.[1];
}

/**
 * The pod UID in a container's cgroup path (below the v2 root), from its
 * parent directory: "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid with _>.slice" (systemd).
 */
export function podUidOf(cgroupPath: string): string | undefined {
  const parent = cgroupPath.split('/').filter(Boolean).at(-2);
  const m = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/.exec(parent ?? '');
  return m?.[1].replaceAll('_', '-');
}

/** The owner that controls an object (ownerReferences with controller: true), or its first owner. */
export function controllerOf(refs: OwnerRef[] | undefined): OwnerRef | undefined {
  return refs?.find((r) => r.controller) ?? refs?.[0];
}

/** Reads an owner's own ownerReferences; throws when it may not (RBAC) or it is gone. */
export type OwnerGetter = (ref: OwnerRef, namespace: string) => Promise<OwnerRef[] | undefined>;

/** The kinds whose owners are looked up (ReplicaSet → Deployment, Job → CronJob); the rest are top owners. */
export const OWNED_KINDS = new Set(['ReplicaSet', 'Job']);

/**
 * A pod's top owner, "Kind/name": its controller's controller, and so on,
 * as far as the getter may read. An owner it may not read (403 without the
 * RBAC rule) or that is gone stops the walk there: the direct owner is still
 * better than nothing. Bounded, so an ownership loop cannot hang it.
 */
export async function topOwner(pod: PodView, get: OwnerGetter, maxDepth = 4): Promise<string | undefined> {
  let ref = controllerOf(pod.metadata?.ownerReferences);
  if (!ref) return undefined;
  const namespace = pod.metadata?.namespace ?? '';
  for (let depth = 0; depth < maxDepth && OWNED_KINDS.has(ref.kind); depth++) {
    let up: OwnerRef | undefined;
    try {
      up = controllerOf(await get(ref, namespace));
    } catch {
      break; // forbidden or gone: the owner known so far
    }
    if (!up) break;
    ref = up;
  }
  return `${ref.kind}/${ref.name}`;
}

/** The fields one of a pod's containers gets (container: its name in the pod, when known). */
export function k8sInfoOf(pod: PodView, container: string | undefined, owner: string | undefined, node?: string): K8sInfo {
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
  return {
    node: node ?? pod.spec?.nodeName,
    namespace: pod.metadata?.namespace,
    pod: pod.metadata?.name,
    ...(container !== undefined ? { container } : {}),
    labels: { ...pod.metadata?.labels },
    ...(owner !== undefined ? { owner } : {}),
    ...(ips.length ? { ips } : {}),
  };
}

/** The CRI annotation (runc state, as labels) that says a container is a pod's sandbox (pause). */
const SANDBOX_TYPE = ['io.kubernetes.cri.container-type', 'io.kubernetes.docker.type'];

function isSandbox(c: ContainerInfo): boolean {
  return SANDBOX_TYPE.some((k) => c.labels?.[k] === 'sandbox' || c.labels?.[k] === 'podsandbox');
}

/**
 * The pods of a node, indexed for the joins. The owner of each pod is what
 * the caller resolved (topOwner); until then the direct owner.
 */
export class PodIndex {
  private readonly byUid = new Map<string, PodView>();
  private readonly byContainer = new Map<string, { pod: PodView; name: string }>();
  private readonly owners = new Map<string, string>();

  constructor(readonly node?: string) {}

  set(pod: PodView): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    this.delete(pod);
    this.byUid.set(uid, pod);
    const s = pod.status;
    for (const st of [...(s?.containerStatuses ?? []), ...(s?.initContainerStatuses ?? []), ...(s?.ephemeralContainerStatuses ?? [])]) {
      const id = containerIdOf(st.containerID);
      if (id) this.byContainer.set(id, { pod, name: st.name });
    }
  }

  /**
   * Forgets a deleted pod, but not its container ids: a step's last pass may
   * still name a container of a pod deleted during the run.
   */
  delete(pod: PodView): void {
    const uid = pod.metadata?.uid;
    if (uid) this.byUid.delete(uid);
  }

  setOwner(uid: string, owner: string): void {
    this.owners.set(uid, owner);
  }

  pods(): PodView[] {
    return [...this.byUid.values()];
  }

  /** The pod and container name a discovered container belongs to, by its id, else by the pod UID of its cgroup path. */
  lookup(c: ContainerInfo): { pod: PodView; container?: string } | undefined {
    const byId = this.byContainer.get(c.id);
    if (byId) return { pod: byId.pod, container: byId.name };
    const uid = podUidOf(c.cgroupPath);
    const pod = uid ? this.byUid.get(uid) : undefined;
    // the CRI's annotation (runc state) names it before the pod's status lists its id
    return pod ? { pod, container: c.k8s?.container } : undefined;
  }

  ownerOf(pod: PodView): string | undefined {
    const resolved = this.owners.get(pod.metadata?.uid ?? '');
    if (resolved) return resolved;
    const direct = controllerOf(pod.metadata?.ownerReferences);
    return direct && `${direct.kind}/${direct.name}`;
  }

  /**
   * The source: a pod's containers gain node, namespace, pod, container,
   * labels, owner and ips (the API server's view wins over the CRI's
   * annotations). A pod's sandbox (pause) is not one of its containers, as
   * in Inspektor Gadget: it gains nothing and no Kubernetes selection matches it.
   */
  source(): ContainerSource {
    return {
      name: 'kubernetes',
      enrich: (containers) => {
        for (const c of containers) {
          if (isSandbox(c)) continue;
          const found = this.lookup(c);
          if (!found) continue;
          const info = k8sInfoOf(found.pod, found.container, this.ownerOf(found.pod), this.node);
          c.k8s = { ...c.k8s, ...info };
          if (info.container) c.name ??= info.container;
        }
      },
      // a container in a pod cgroup whose pod or name is not known yet: the watch (or the kubelet's status) is behind
      pending: (c) => {
        if (isSandbox(c)) return false;
        const uid = podUidOf(c.cgroupPath);
        if (!uid && !c.cgroupPath.includes('kubepods')) return false;
        const found = this.lookup(c);
        return !found || found.container === undefined;
      },
    };
  }
}
