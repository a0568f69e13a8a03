/**
 * Containers on both sides of the seam: capture writes the run's container
 * table (DIR/raw/containers.json); evaluation joins each step's raw events
 * with it by cgroup_id, off the capture path, so tracing costs the same with
 * and without enrichment (bench/containers.ts measures it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { discoverCgroups } from '../containers/discovery.ts';
import { enrich, infoOf, type ContainerSource } from '../containers/enrichment.ts';
import type { ContainerRecord } from '../containers/selection.ts';
import { buildTable, containerColumns, containerFields, containerLookup, CONTAINERS_FILE, type ContainerTable } from '../containers/table.ts';
import { AtomicFile, ndjsonBatches, writeTextAtomic } from './artifacts.ts';

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

const CGROUP_ID = /"cgroup_id":(\d+)/;
const JOINED = '"container_id":';
/** an event's node, the last field of a cluster node's lines (src/k8s/agent.ts addNode) */
const NODE = /"node":"([^"\\]*)"\}$/;

/**
 * A step's events joined with the table: an event from a known container
 * gains its fields (before the closing brace, so the line is not parsed);
 * one from a container the step resolved out is dropped. Returns the events
 * written and the columns added.
 */
export async function joinContainers(raw: string, out: string, table: ContainerTable, step: string): Promise<{ events: number; columns: string[] }> {
  const suffix = containerLookup(table, (c) => ',' + JSON.stringify(containerFields(c)).slice(1));
  const rejected = new Set(table.steps[step]?.rejected ?? []);
  const file = AtomicFile.create(out);
  let events = 0;
  try {
    for await (const lines of ndjsonBatches(raw)) {
      let chunk = '';
      for (const line of lines) {
        const id = CGROUP_ID.exec(line)?.[1];
        if (id !== undefined && rejected.has(id)) continue;
        // a cluster's merged table: the id is the event's node's (cgroup ids are unique per node only)
        const add = id === undefined ? undefined : suffix.get(id, suffix.merged ? NODE.exec(line)?.[1] : undefined);
        // a cluster node's raw events were joined before upload (src/k8s/agent.ts joinRaw): not twice
        chunk += (add && !line.includes(JOINED) ? line.slice(0, -1) + add : line) + '\n';
        events++;
      }
      file.write(chunk);
    }
  } catch (err) {
    file.abort();
    throw err;
  }
  file.commit();
  return { events, columns: containerColumns(table) };
}
