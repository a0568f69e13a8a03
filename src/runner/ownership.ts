/**
 * Names that say which gadget-run made a thing (a workload cgroup, a spool
 * folder), so a later run can clean up after one that was SIGKILLed and never
 * touch a concurrent run's. A pid alone is not enough: pids are reused, so the
 * name carries the owner's start time too (field 22 of /proc/PID/stat, in clock
 * ticks since boot), and the owner is alive only while that pid has that start
 * time.
 *
 *   fs.mkdtempSync(path.join(dir, ownedName('.spool')))   → dir/.spool@4242-37814-Ab12Cd
 *   sweepStale(dir, '.spool')                              → removes those whose owner is gone
 */
import fs from 'node:fs';
import path from 'node:path';

/** `@` cannot appear in a recipe name (schema) or in a prefix, so the owner part is found from it. */
const OWNED = /^(.*)@(\d+)-(\d+)-[^@/]+$/;

/** Start time of a process (clock ticks after boot), or undefined when it does not exist. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: count fields after the last ')'
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
}

/** The prefix for mkdtemp of a thing this process owns: `<prefix>@<pid>-<starttime>-`. */
export function ownedName(prefix: string): string {
  if (prefix.includes('@') || prefix.includes('/')) throw new Error(`ownedName: the prefix "${prefix}" must not contain "@" or "/"`);
  return `${prefix}@${process.pid}-${processStartTime(process.pid)}-`;
}

export interface Owner {
  prefix: string;
  pid: number;
  startTime: string;
}

/** Who made `name` (a base name from ownedName + mkdtemp), or undefined for a name ownedName did not make. */
export function ownerOf(name: string): Owner | undefined {
  const m = OWNED.exec(path.basename(name));
  return m ? { prefix: m[1], pid: Number(m[2]), startTime: m[3] } : undefined;
}

/** False only when `name` was made by a process that is gone; a name of unknown shape counts as alive (not ours to touch). */
export function isOwnerAlive(name: string): boolean {
  const owner = ownerOf(name);
  return !owner || processStartTime(owner.pid) === owner.startTime;
}

/**
 * Remove the entries of `dir` made by ownedName(prefix) (any prefix when
 * undefined) whose owner is gone; `remove` does the removing (a folder tree
 * by default). Returns the paths removed. A missing `dir` has nothing stale.
 */
export async function sweepStale(dir: string, prefix?: string, remove: (p: string) => void | Promise<void> = removeTree): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    const owner = ownerOf(name);
    if (!owner || (prefix !== undefined && owner.prefix !== prefix) || isOwnerAlive(name)) continue;
    const p = path.join(dir, name);
    await remove(p);
    removed.push(p);
  }
  return removed;
}

function removeTree(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}
