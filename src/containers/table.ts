/**
 * The per-run container table, DIR/raw/containers.json: the containers
 * capture knew of (discovered on the node, or tracked by a step's container
 * set) and, per step with a container scope, the cgroup ids it watched and
 * the ones it resolved out (PENDING containers that did not match: their
 * events reached the ring before they were resolved and are dropped at
 * evaluation). Evaluation joins events with it by cgroup_id.
 */
import type { ContainerInfo } from './enrichment.ts';
import type { ContainerRecord } from './selection.ts';

export const CONTAINERS_FILE = 'containers.json';

export interface ContainerTable {
  containers: ContainerInfo[];
  steps: Record<string, { selected: string[]; rejected: string[] }>;
}

/** One table from what the node showed and what each step recorded; a step's view of a container wins over discovery. */
export function buildTable(discovered: ContainerInfo[], perStep: Record<string, ContainerRecord[] | undefined>): ContainerTable {
  const byCgroup = new Map(discovered.map((c) => [c.cgroupId, c]));
  const steps: ContainerTable['steps'] = {};
  for (const [id, records] of Object.entries(perStep)) {
    if (!records) continue;
    steps[id] = { selected: [], rejected: [] };
    for (const { selected, ...info } of records) {
      const known = byCgroup.get(info.cgroupId);
      byCgroup.set(info.cgroupId, { ...known, ...info, cgroupPath: info.cgroupPath || known?.cgroupPath || '' });
      steps[id][selected ? 'selected' : 'rejected'].push(info.cgroupId);
    }
  }
  return { containers: [...byCgroup.values()], steps };
}

/** The fields an event from this container gains, in order (IG's names for Kubernetes ones). */
export function containerFields(c: ContainerInfo): Record<string, unknown> {
  return {
    container_id: c.id,
    container_name: c.name ?? '',
    runtime: c.runtime,
    container_image: c.image ?? '',
    ...(c.k8s?.node !== undefined ? { node: c.k8s.node } : {}),
    ...(c.k8s?.namespace !== undefined ? { namespace: c.k8s.namespace } : {}),
    ...(c.k8s?.pod !== undefined ? { pod: c.k8s.pod } : {}),
    ...(c.k8s?.container !== undefined ? { container: c.k8s.container } : {}),
    ...(c.k8s?.labels !== undefined ? { labels: c.k8s.labels } : {}),
    ...(c.k8s?.owner !== undefined ? { owner: c.k8s.owner } : {}),
  };
}

/** The columns container fields add, for tables (CSV), over every container of the table. */
export function containerColumns(table: ContainerTable): string[] {
  const cols = new Set<string>();
  for (const c of table.containers) for (const k of Object.keys(containerFields(c))) cols.add(k);
  return [...cols];
}
