/**
 * Selections: which containers a step watches, as a recipe says it
 * (`containers:` on the recipe or a step), and the kernel set they become.
 * Matching follows Inspektor Gadget's ContainerSelector: every given key
 * must match, a missing key matches all, `labels` must all be present with
 * equal values. `container` is a container's name or its id (12 or more
 * leading hex digits); `image` its image name with or without the
 * registry, tag or digest; `runtime` podman, docker, containerd or cri-o.
 */
import type { KernelMap } from '../ebpf/map.ts';
import { discoverCgroups, parseContainerCgroup } from './discovery.ts';
import { enrich, infoOf, type ContainerInfo, type ContainerSource } from './enrichment.ts';

export interface ContainerSelection {
  container?: string;
  image?: string;
  runtime?: string;
  namespace?: string;
  pod?: string;
  labels?: Record<string, string>;
}

/** A step's container scope, planned from the recipe. */
export interface ContainerScope {
  /** containers the step selects; none: only the workload's own containers (if `workload`) */
  selection?: ContainerSelection;
  /** containers whose runtime the workload started belong to the workload (default on with `run`) */
  workload: boolean;
  /** where container names, images and Kubernetes fields come from (default: defaultSources()) */
  sources?: ContainerSource[];
}

/** The recipe keys that select (the rest of `containers:` are options). */
export const SELECTION_KEYS = ['container', 'image', 'runtime', 'namespace', 'pod', 'labels'] as const;

function imageMatches(image: string | undefined, want: string): boolean {
  if (!image) return false;
  if (image === want) return true;
  // docker.io/library/busybox:1.36@sha256:… matches busybox, busybox:1.36, library/busybox
  const bare = image.replace(/@.*$/, '');
  const untagged = bare.replace(/:[^/:]*$/, '');
  return [bare, untagged].some((s) => s === want || s.endsWith(`/${want}`));
}

export function matchesSelection(c: ContainerInfo, sel: ContainerSelection): boolean {
  if (sel.container !== undefined) {
    const byId = /^[0-9a-f]{12,64}$/.test(sel.container) && c.id.startsWith(sel.container);
    if (!byId && c.name !== sel.container && c.k8s?.container !== sel.container) return false;
  }
  if (sel.image !== undefined && !imageMatches(c.image, sel.image)) return false;
  if (sel.runtime !== undefined && c.runtime !== sel.runtime) return false;
  if (sel.namespace !== undefined && c.k8s?.namespace !== sel.namespace) return false;
  if (sel.pod !== undefined && c.k8s?.pod !== sel.pod) return false;
  for (const [k, v] of Object.entries(sel.labels ?? {})) {
    if ((c.k8s?.labels?.[k] ?? c.labels?.[k]) !== v) return false;
  }
  return true;
}

/**
 * The BPF constants of a scope (bpf/include/containers.h), and the tracking
 * programs it needs. A node-wide step (no scope, no workload cgroup) filters
 * nothing but still has the kernel note every container that starts: one that
 * exits before the step ends is gone from the cgroup tree when the table is
 * written, and its events would carry a cgroup_id nothing names.
 */
export function scopeConstants(scope: ContainerScope | undefined, hasWorkload: boolean) {
  const workload = !!scope?.workload && hasWorkload && !scope.selection;
  const selection = !!scope?.selection;
  const learn = !scope && !hasWorkload;
  return {
    constants: {
      targ_containers: selection || workload ? 1 : 0,
      targ_containers_new: selection || learn ? 1 : 0,
      targ_containers_workload: workload ? 1 : 0,
    },
    /** container programs to load: none for a workload-bound step without a container scope */
    programs: [
      ...(selection || workload || learn ? ['gadget_container_mkdir'] : []),
      ...(workload ? ['gadget_container_fork', 'gadget_container_exit'] : []),
    ],
  };
}

/** Every program containers.h defines, so objects without a scope leave them out. */
export const CONTAINER_PROGRAMS = ['gadget_container_mkdir', 'gadget_container_fork', 'gadget_container_exit'];

const SELECTED = 1;
const PENDING = 2;
/** struct gadget_container: __u32 state, then the cgroup directory name */
const NAME_OFFSET = 4;

/** What a step knew of a container: who it is, and whether the step watched it. */
export interface ContainerRecord extends ContainerInfo {
  /** absent: a node-wide step, which watched every container, learned of this one as it started */
  selected?: boolean;
}

/** How often the tracker resolves containers the kernel added (a pending one's events reach the ring until then). */
export const TRACK_INTERVAL_MS = 25;

/**
 * How long a new container may wait for a source that is still learning
 * about it (ContainerSource.pending: the kubelet reports a container's id
 * after its next relist, about a second; a pod's watch event may lag under
 * load) before it is judged with what is known.
 */
export const SETTLE_MS = 10_000;

/**
 * Keeps a step's kernel container set: seeds it with the matching containers
 * that run now, then resolves the ones the kernel adds as they start
 * (SELECTED from the workload: named and recorded; PENDING: named, then kept
 * or deleted by the selection) and forgets those whose cgroup is gone.
 * Without a scope (a node-wide step) the set filters nothing: every container
 * the kernel adds is named while it runs, recorded, and taken out of the set,
 * which would otherwise fill up on a node that starts many.
 */
export class ContainerTracker {
  private readonly seen = new Map<string, ContainerRecord>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly map: KernelMap, private readonly scope: ContainerScope | undefined) {
    if (scope?.selection) {
      const now = enrich(discoverCgroups().map(infoOf), scope.sources);
      for (const c of now) {
        // running already, but a source still learning about it (a pod created just before the
        // step, whose container id is not in its status yet): judged by poll() like a newcomer,
        // not rejected now on what is not known yet; its events reach the ring meanwhile
        if (scope.sources?.some((s) => s.pending?.(c))) {
          this.map.update(key(c.cgroupId), value(this.map.info.valueSize, PENDING));
          continue;
        }
        const selected = matchesSelection(c, scope.selection);
        this.seen.set(c.cgroupId, { ...c, selected });
        if (selected) this.map.update(key(c.cgroupId), value(this.map.info.valueSize, SELECTED));
      }
    }
    this.timer = setInterval(() => this.poll(), TRACK_INTERVAL_MS);
    this.timer.unref();
  }

  /** PENDING containers a source is still learning about: since when (ms), and the cgroup path found then */
  private readonly waiting = new Map<string, { since: number; path: string }>();

  /** Resolve what the kernel added since the last pass; `last`: resolve every one, waiting or not. */
  poll(last = false): void {
    const fresh = this.map.entries().filter(([k]) => !this.seen.has(k.readBigUInt64LE(0).toString()));
    if (!fresh.length) return;
    // the cgroup tree is walked for newcomers only, not again for each pass a waiting one is looked at
    const walk = fresh.some(([k]) => !this.waiting.has(k.readBigUInt64LE(0).toString()));
    const live = new Map(walk ? discoverCgroups().map((c) => [c.cgroupId.toString(), c]) : []);
    const infos: { info: ContainerInfo; state: number; k: Buffer; v: Buffer }[] = [];
    for (const [k, v] of fresh) {
      const id = k.readBigUInt64LE(0).toString();
      const state = v.readUInt32LE(0);
      const waited = this.waiting.get(id);
      const found = live.get(id) ?? (waited?.path ? parseContainerCgroup(waited.path) : undefined);
      const name = v.toString('utf8', NAME_OFFSET, v.indexOf(0, NAME_OFFSET) < 0 ? v.length : v.indexOf(0, NAME_OFFSET));
      const parsed = found ?? parseContainerCgroup(`/${name}`);
      if (!parsed) continue;
      infos.push({ info: { id: parsed.id, runtime: parsed.runtime, cgroupId: id, cgroupPath: found?.path ?? '' }, state, k, v });
    }
    enrich(infos.map((i) => i.info), this.scope?.sources);
    const now = Date.now();
    for (const { info, state, k, v } of infos) {
      // its events keep reaching the ring while it waits: a pod's container is judged once its pod is known
      if (state === PENDING && !last && this.scope?.sources?.some((s) => s.pending?.(info))) {
        const since = this.waiting.get(info.cgroupId)?.since ?? now;
        this.waiting.set(info.cgroupId, { since, path: info.cgroupPath });
        if (now - since < SETTLE_MS) continue;
      }
      this.waiting.delete(info.cgroupId);
      if (!this.scope) {
        this.seen.set(info.cgroupId, info);
        this.map.delete(k);
        continue;
      }
      const selected = state === SELECTED || (state === PENDING && !!this.scope.selection && matchesSelection(info, this.scope.selection));
      this.seen.set(info.cgroupId, { ...info, selected });
      if (!selected) this.map.delete(k);
      else if (state === PENDING) {
        v.writeUInt32LE(SELECTED, 0);
        this.map.update(k, v);
      }
    }
  }

  private stopped = false;

  /** A last pass (the first call only: a session's clean-up calls it again before closing the map); the containers the step knew of. */
  stop(): ContainerRecord[] {
    if (!this.stopped) {
      this.stopped = true;
      clearInterval(this.timer);
      this.poll(true);
    }
    return [...this.seen.values()];
  }
}

function key(cgroupId: string): Buffer {
  const k = Buffer.alloc(8);
  k.writeBigUInt64LE(BigInt(cgroupId));
  return k;
}

/** A set member user space adds: the name is only for members the kernel added. */
function value(size: number, state: number): Buffer {
  const v = Buffer.alloc(size);
  v.writeUInt32LE(state, 0);
  return v;
}
