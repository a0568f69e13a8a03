/**
 * The per-run container table, DIR/raw/containers.json: the containers
 * capture knew of (discovered on the node when the capture ended, or tracked
 * by a step's container set, which keeps those that exited before then)
 * and, per step with a container scope that knew of any, the cgroup ids it
 * watched and the ones it resolved out (PENDING containers that did not match: their
 * events reached the ring before they were resolved and are dropped at
 * evaluation). Evaluation joins events with it by cgroup_id.
 */
import type { ContainerInfo } from './enrichment.ts';
import type { ContainerRecord } from './selection.ts';

export const CONTAINERS_FILE = 'containers.json';

/**
 * A row of the table. A cluster's merged table (DIR/raw/containers.json of
 * `run --cluster`, mergeTables) names each row's node: cgroup ids are inode
 * numbers, unique only per node, so its rows are looked up by node and id.
 */
export type TableEntry = ContainerInfo & { node?: string };

export interface ContainerTable {
  containers: TableEntry[];
  steps: Record<string, { selected: string[]; rejected: string[] }>;
}

/** One table from what the node showed and what each step recorded; a step's view of a container wins over discovery. */
export function buildTable(discovered: ContainerInfo[], perStep: Record<string, ContainerRecord[] | undefined>): ContainerTable {
  const byCgroup = new Map(discovered.map((c) => [c.cgroupId, c]));
  const steps: ContainerTable['steps'] = {};
  for (const [id, records] of Object.entries(perStep)) {
    if (!records) continue;
    for (const { selected, ...info } of records) {
      const known = byCgroup.get(info.cgroupId);
      byCgroup.set(info.cgroupId, { ...known, ...info, cgroupPath: info.cgroupPath || known?.cgroupPath || '' });
      // a node-wide step's records name containers (some gone by now) but judge none
      if (selected !== undefined) (steps[id] ??= { selected: [], rejected: [] })[selected ? 'selected' : 'rejected'].push(info.cgroupId);
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

/**
 * The container fields a triggered step's `for_each` may key on: an event gets them only by
 * its cgroup_id (the join above), so a trigger reads them from the live container table
 * (src/runner/containers.ts liveContainers). `labels` (an object) is not a key.
 */
export const CONTAINER_KEYS = ['container_id', 'container_name', 'container_image', 'runtime', 'node', 'namespace', 'pod', 'container', 'owner'] as const;
export type ContainerKey = (typeof CONTAINER_KEYS)[number];

/** The fields of a container that a for_each key names it by: a pod is unique in its namespace, a container in its pod. */
export const CONTAINER_KEY_PARTS: Record<ContainerKey, ContainerKey[]> = {
  container_id: ['container_id'],
  container_name: ['container_name'],
  container_image: ['container_image'],
  runtime: ['runtime'],
  node: ['node'],
  namespace: ['namespace'],
  pod: ['namespace', 'pod'],
  container: ['namespace', 'pod', 'container'],
  owner: ['namespace', 'owner'],
};

export const isContainerKey = (name: string): name is ContainerKey => (CONTAINER_KEYS as readonly string[]).includes(name);

/**
 * A container's for_each key (its parts joined by "/", e.g. "prod/web-1" for pod) and the
 * fields it was made of; undefined when the container lacks a part (a podman container has no pod).
 */
export function containerKey(c: ContainerInfo, key: ContainerKey): { key: string; fields: Record<string, string> } | undefined {
  const all = containerFields(c);
  const fields: Record<string, string> = {};
  for (const part of CONTAINER_KEY_PARTS[key]) {
    const v = all[part];
    if (typeof v !== 'string' || v === '') return undefined;
    fields[part] = v;
  }
  return { key: Object.values(fields).join('/'), fields };
}

/** The columns container fields add, for tables (CSV), over every container of the table. */
export function containerColumns(table: ContainerTable): string[] {
  const cols = new Set<string>();
  for (const c of table.containers) for (const k of Object.keys(containerFields(c))) cols.add(k);
  return [...cols];
}

/** A cluster's merged table: rows of each node's table name their node. */
const isMerged = (table: ContainerTable | undefined) => !!table?.containers.some((c) => c.node !== undefined);
/** The key of a row: its cgroup id, with its node in a merged table (the node an event's part of the merge came from, src/runner/enrich.ts). */
const rowKey = (merged: boolean, cgroupId: unknown, node: unknown) => (merged ? `${String(node)}\u0000${String(cgroupId)}` : String(cgroupId));

/** Finds what an event's row maps to (the row itself by default): by its cgroup_id, and by its node when the table is a cluster's merge. */
export function containerLookup<T = TableEntry>(table: ContainerTable | undefined, value: (c: TableEntry) => T = (c) => c as T): { merged: boolean; get(cgroupId: unknown, node: unknown): T | undefined } {
  const merged = isMerged(table);
  const byKey = new Map((table?.containers ?? []).map((c) => [rowKey(merged, c.cgroupId, c.node), value(c)]));
  return { merged, get: (cgroupId, node) => byKey.get(rowKey(merged, cgroupId, node)) };
}

/** The cgroup ids a step resolved out (their events are dropped), keyed as rows are: by node too in a merged table. */
export function rejectedLookup(table: ContainerTable | undefined, step: string): { has(cgroupId: unknown, node: unknown): boolean } {
  const merged = isMerged(table);
  const ids = new Set(table?.steps[step]?.rejected ?? []);
  return { has: (cgroupId, node) => ids.has(rowKey(merged, cgroupId, node)) };
}

/**
 * The cluster's table from each node's: every row names its node, and the
 * steps' records key their cgroup ids by node as rows do (src/runner/enrich.ts
 * drops a resolved-out container's events at the merged evaluation).
 */
export function mergeTables(tables: { node: string; table: ContainerTable }[]): ContainerTable {
  const steps: ContainerTable['steps'] = {};
  for (const { node, table } of tables) {
    for (const [id, rec] of Object.entries(table.steps)) {
      const into = (steps[id] ??= { selected: [], rejected: [] });
      into.selected.push(...rec.selected.map((c) => rowKey(true, c, node)));
      into.rejected.push(...rec.rejected.map((c) => rowKey(true, c, node)));
    }
  }
  return { containers: tables.flatMap(({ node, table }) => table.containers.map((c) => ({ ...c, node }))), steps };
}
