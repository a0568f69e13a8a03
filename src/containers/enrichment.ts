/**
 * Enrichment: what is known of a container beyond its cgroup. Each source
 * adds what its runtime says about containers it knows; a source that cannot
 * reach its runtime adds nothing (the container keeps its id and runtime
 * from the cgroup path). Kubernetes fields come from a source too: the CRI
 * runtimes' own annotations here, the API server's view in src/k8s.
 *
 * Events are joined with this table at evaluation, by cgroup id
 * (DIR/raw/containers.json, joinContainers in src/runner/containers.ts): the capture path writes
 * events as it always did, and costs nothing more.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DiscoveredCgroup, Runtime } from './discovery.ts';

/** Kubernetes' view of a container (IG's fields). */
export interface K8sInfo {
  node?: string;
  namespace?: string;
  pod?: string;
  /** the container's name in its pod */
  container?: string;
  labels?: Record<string, string>;
  /** the pod's top owner, "Kind/name" */
  owner?: string;
  /** the pod's IPs (status.podIPs), when the source knows them: advise/network-policy maps peers by them */
  ips?: string[];
}

export interface ContainerInfo {
  /** 64 hex */
  id: string;
  runtime: Runtime;
  /** cgroup v2 id (decimal: events' cgroup_id) */
  cgroupId: string;
  /** below the cgroup v2 root; empty when the container was gone before it was looked at */
  cgroupPath: string;
  name?: string;
  image?: string;
  /** OCI annotations / runtime labels */
  labels?: Record<string, string>;
  k8s?: K8sInfo;
}

/** Adds what one runtime knows; must not throw for a container it does not know. */
export interface ContainerSource {
  name: string;
  enrich(containers: ContainerInfo[]): void;
  /**
   * True while the source expects to know more of a container soon (the
   * Kubernetes source: its pod's watch event or status is behind the
   * kernel's cgroup_mkdir). A step's tracker waits before it resolves such a
   * new container against its selection (src/containers/selection.ts).
   */
  pending?(c: ContainerInfo): boolean;
}

export function infoOf(c: DiscoveredCgroup): ContainerInfo {
  return { id: c.id, runtime: c.runtime, cgroupId: c.cgroupId.toString(), cgroupPath: c.path };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Podman (and CRI-O, and buildah) keep their containers in containers/storage:
 * overlay-containers/containers.json has each id's names and image, written
 * before the runtime creates the cgroup, so a new container is named at once.
 */
export function containersStorageSource(root = '/var/lib/containers/storage'): ContainerSource {
  return {
    name: 'containers-storage',
    enrich(containers) {
      const list = readJson(path.join(root, 'overlay-containers', 'containers.json'));
      if (!Array.isArray(list)) return;
      const byId = new Map(list.map((e: { id?: string }) => [e.id, e]));
      for (const c of containers) {
        const e = byId.get(c.id) as { names?: string[]; image?: string; metadata?: string } | undefined;
        if (!e) continue;
        if (e.names?.[0]) c.name ??= e.names[0];
        let meta: { 'image-name'?: string } = {};
        try {
          meta = JSON.parse(e.metadata ?? '{}');
        } catch {
          /* not JSON: no image name */
        }
        const image = meta['image-name'] || e.image;
        if (image) c.image ??= image;
      }
    },
  };
}

/**
 * Podman's event log (the file backend, without journald): names a container
 * that was already removed when it was looked at, as a short `--rm` one may
 * be. Only its tail is read, and only for containers still unnamed.
 */
export function podmanEventsSource(file = '/run/libpod/events/events.log', tailBytes = 1 << 20): ContainerSource {
  return {
    name: 'podman-events',
    enrich(containers) {
      const unnamed = new Map(containers.filter((c) => !c.name && c.runtime === 'podman').map((c) => [c.id, c]));
      if (!unnamed.size) return;
      let text: string;
      try {
        const fd = fs.openSync(file, 'r');
        try {
          const size = fs.fstatSync(fd).size;
          const buf = Buffer.alloc(Math.min(size, tailBytes));
          fs.readSync(fd, buf, 0, buf.length, size - buf.length);
          text = buf.toString('utf8');
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        return;
      }
      for (const line of text.split('\n')) {
        const id = /"ID":"([0-9a-f]{64})"/.exec(line)?.[1];
        const c = id && unnamed.get(id);
        if (!c) continue;
        try {
          const e = JSON.parse(line) as { Name?: string; Image?: string };
          if (e.Name) c.name ??= e.Name;
          if (e.Image) c.image ??= e.Image;
        } catch {
          /* the first line of the tail may be cut */
        }
      }
    },
  };
}

/** Where runc keeps a container's state, per runtime that drives it. */
const RUNC_STATE_ROOTS = ['/run/runc', '/run/docker/runtime-runc/moby', '/run/containerd/runc/k8s.io', '/run/containerd/runc/default', '/run/crio/runc'];

/** The agent's pod mounts the node's /run at /host/run (src/k8s/manifests.ts HOST_PATHS). */
const HOST_RUN = '/host/run';

function runcStateRoots(): string[] {
  return fs.existsSync(HOST_RUN) ? [...RUNC_STATE_ROOTS, ...RUNC_STATE_ROOTS.map((r) => HOST_RUN + r.slice('/run'.length))] : RUNC_STATE_ROOTS;
}

/** CRI annotations → Kubernetes fields (containerd's and CRI-O's keys). */
const K8S_ANNOTATIONS: [keyof Omit<K8sInfo, 'labels' | 'ips'>, string[]][] = [
  ['namespace', ['io.kubernetes.cri.sandbox-namespace', 'io.kubernetes.pod.namespace']],
  ['pod', ['io.kubernetes.cri.sandbox-name', 'io.kubernetes.pod.name']],
  ['container', ['io.kubernetes.cri.container-name', 'io.kubernetes.container.name']],
];

/**
 * runc's state.json (any runtime that drives runc): the OCI annotations as
 * labels, from which the CRI runtimes' Kubernetes fields and image come.
 */
export function runcStateSource(roots = runcStateRoots()): ContainerSource {
  return {
    name: 'runc-state',
    enrich(containers) {
      for (const c of containers) {
        for (const root of roots) {
          const state = readJson(path.join(root, c.id, 'state.json')) as { config?: { labels?: string[] } } | undefined;
          if (!state?.config?.labels) continue;
          const labels: Record<string, string> = {};
          for (const l of state.config.labels) {
            const eq = l.indexOf('=');
            if (eq > 0) labels[l.slice(0, eq)] = l.slice(eq + 1);
          }
          delete labels.bundle;
          c.labels = { ...labels, ...c.labels };
          const k8s: K8sInfo = { ...c.k8s };
          for (const [field, keys] of K8S_ANNOTATIONS) {
            const v = keys.map((k) => labels[k]).find(Boolean);
            if (v) k8s[field] ??= v;
          }
          if (Object.keys(k8s).length) c.k8s = k8s;
          const image = labels['io.kubernetes.cri.image-name'] ?? labels['io.kubernetes.cri-o.ImageName'];
          if (image) c.image ??= image;
          if (c.k8s?.container) c.name ??= c.k8s.container;
          break;
        }
      }
    },
  };
}

/** The sources used when none are given; the Kubernetes source is added by src/k8s on a cluster. */
export function defaultSources(): ContainerSource[] {
  return [containersStorageSource(), runcStateSource(), podmanEventsSource()];
}

export function enrich(containers: ContainerInfo[], sources: ContainerSource[] = defaultSources()): ContainerInfo[] {
  for (const s of sources) s.enrich(containers);
  return containers;
}
