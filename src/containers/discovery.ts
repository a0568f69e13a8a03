/**
 * Discovery: which containers run on this node, from the cgroup v2 tree. A
 * container runtime names the cgroup of each container after its id; the
 * shapes below are the ones bpf/include/containers.h matches in the kernel
 * at cgroup_mkdir, so user space and the kernel agree on what a container is.
 *   systemd driver   .../docker-<id>.scope, crio-<id>.scope, cri-containerd-<id>.scope, libpod-<id>.scope
 *   cgroupfs driver  /docker/<id>, /libpod_parent/libpod-<id>, /kubepods/<qos>/pod<uid>/<id>
 * The runtime of a bare id comes from its parents (docker, kubepods → a CRI runtime).
 */
import fs from 'node:fs';
import path from 'node:path';

/** The cgroup v2 mount, from /proc/self/mountinfo: /sys/fs/cgroup on most systems, /sys/fs/cgroup/unified on hybrid ones. */
export function cgroup2Mount(): string {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.split(' ')[0] === 'cgroup2') return left.split(' ')[4];
  }
  throw new Error('no cgroup v2 mount found in /proc/self/mountinfo — `run` needs cgroup v2 (mount -t cgroup2 none /sys/fs/cgroup/unified)');
}

export type Runtime = 'podman' | 'docker' | 'containerd' | 'cri-o' | 'unknown';

export interface ContainerCgroup {
  /** the container id (64 hex) */
  id: string;
  runtime: Runtime;
  /** path below the cgroup v2 root, starting with / */
  path: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const PREFIXES: Record<string, Runtime> = { libpod: 'podman', docker: 'docker', crio: 'cri-o', 'cri-containerd': 'containerd' };

/** The container a cgroup path (below the v2 root) belongs to, from its last component; undefined for other cgroups. */
export function parseContainerCgroup(cgroupPath: string): ContainerCgroup | undefined {
  const parts = cgroupPath.split('/').filter(Boolean);
  const last = parts.at(-1);
  if (!last) return undefined;
  const name = last.endsWith('.scope') ? last.slice(0, -'.scope'.length) : last;
  if (name.length < 64) return undefined;
  const id = name.slice(-64);
  if (!HEX64.test(id)) return undefined;
  const prefix = name.slice(0, -64);
  const normal = '/' + parts.join('/');
  if (prefix === '') return { id, runtime: runtimeFromParents(parts.slice(0, -1)), path: normal };
  if (!prefix.endsWith('-')) return undefined;
  const runtime = PREFIXES[prefix.slice(0, -1)];
  return runtime ? { id, runtime, path: normal } : undefined;
}

/** A bare id's runtime: docker's cgroupfs parent is /docker; a kubelet's is kubepods (its CRI runtime unknown from the path). */
function runtimeFromParents(parents: string[]): Runtime {
  if (parents.includes('docker')) return 'docker';
  if (parents.includes('libpod_parent')) return 'podman';
  if (parents.some((p) => p.startsWith('kubepods'))) return 'unknown';
  return 'unknown';
}

/** A container cgroup found on the node, with its kernel id (what events carry as cgroup_id). */
export interface DiscoveredCgroup extends ContainerCgroup {
  cgroupId: bigint;
}

/**
 * Every container cgroup under the cgroup v2 root. A container's own nested
 * cgroups (systemd inside it) are not walked: events from them carry their
 * own ids and are not attributed. Depth is bounded (kubepods nests 4 deep).
 */
export function discoverCgroups(root: string = cgroup2Mount(), maxDepth = 6): DiscoveredCgroup[] {
  const out: DiscoveredCgroup[] = [];
  const walk = (dir: string, rel: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // removed while walking
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const sub = `${rel}/${e.name}`;
      const found = parseContainerCgroup(sub);
      if (found) {
        try {
          out.push({ ...found, cgroupId: fs.statSync(path.join(dir, e.name), { bigint: true }).ino });
        } catch {
          /* gone */
        }
      } else if (depth < maxDepth) {
        walk(path.join(dir, e.name), sub, depth + 1);
      }
    }
  };
  walk(root, '', 1);
  return out;
}
