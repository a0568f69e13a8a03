/**
 * Containers on both sides of the seam: capture writes the run's container
 * table (DIR/raw/containers.json); evaluation's enrich stage (enrich.ts) joins
 * each step's raw events with it by cgroup_id, off the capture path, so tracing
 * costs the same with and without enrichment (bench/containers.ts measures it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { discoverCgroups } from '../containers/discovery.ts';
import { defaultSources, enrich, infoOf, type ContainerInfo, type ContainerSource } from '../containers/enrichment.ts';
import type { ContainerRecord } from '../containers/selection.ts';
import { buildTable, CONTAINERS_FILE, type ContainerTable } from '../containers/table.ts';
import { writeTextAtomic } from './artifacts.ts';

/**
 * Write the table into the capture's staging folder (it becomes DIR/raw),
 * empty too: what raw/ holds must not depend on whether the node happened to
 * run containers.
 */
export async function writeContainerTable(staging: string, perStep: Record<string, ContainerRecord[] | undefined>, sources?: ContainerSource[]): Promise<void> {
  let discovered: ReturnType<typeof infoOf>[] = [];
  try {
    discovered = enrich(discoverCgroups().map(infoOf), sources);
  } catch {
    // no cgroup v2 here: nothing to discover; the steps' records still count
  }
  const table = buildTable(discovered, perStep);
  await writeTextAtomic(path.join(staging, CONTAINERS_FILE), JSON.stringify(table, null, 2) + '\n');
}

export function readContainerTable(rawDir: string): ContainerTable | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(rawDir, CONTAINERS_FILE), 'utf8')) as ContainerTable;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path.join(rawDir, CONTAINERS_FILE)}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The node's containers by cgroup id while a run captures, for a trigger whose for_each is a
 * container field (its events carry only cgroup_id). A cgroup not seen yet walks the cgroup
 * tree again (once per new id); a container whose source still expects to know more of it
 * (a pod not yet in the API server's view) is asked again next time instead of being kept.
 */
export function liveContainers(sources: ContainerSource[] = defaultSources(), discover: () => ContainerInfo[] = () => discoverCgroups().map(infoOf)): (cgroupId: string) => ContainerInfo | undefined {
  const known = new Map<string, ContainerInfo | null>();
  return (cgroupId) => {
    const hit = known.get(cgroupId);
    if (hit !== undefined) return hit ?? undefined;
    let found: ContainerInfo | undefined;
    try {
      const fresh = discover().filter((c) => !known.get(c.cgroupId));
      enrich(fresh, sources);
      for (const c of fresh) {
        if (!sources.some((src) => src.pending?.(c))) known.set(c.cgroupId, c);
        if (c.cgroupId === cgroupId) found = c;
      }
    } catch {
      // no cgroup v2 here: no container to name
    }
    // not a container's cgroup (the host's, a service's): it will not become one
    if (!found) known.set(cgroupId, null);
    return found;
  };
}
