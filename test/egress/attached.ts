/**
 * What the kernel holds of a run's egress programs, as bpftool and /proc say
 * it: the programs a process holds (by id, so neighbours' runs on the shared
 * machine never count), and what is attached to a cgroup.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { bpfFds } from '../helpers/kernel.ts';

/**
 * bpftool's JSON; while the kernel frees a program or a cgroup, bpftool can end its JSON early (it
 * lost the object between listing and describing it): ask again, for up to 5 s
 */
export function bpftool(...args: string[]): unknown {
  let raw = '';
  for (let tries = 200; ; tries--) {
    try {
      raw = execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' });
      // nothing attached is an empty line, not []
      return JSON.parse(raw.trim() || '[]');
    } catch (err) {
      if (!(err instanceof SyntaxError) || tries <= 1) throw new Error(`bpftool ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? (err as Error).message} (it printed ${JSON.stringify(raw.slice(0, 300))})`, { cause: err });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    }
  }
}

export interface Attached {
  id: number;
  name: string;
}

/** the programs attached to the cgroup itself; none once it is gone (another run's sweep may remove a SIGKILLed run's cgroup at any time) */
export function attachedTo(dir: string): Attached[] {
  try {
    const shown = bpftool('cgroup', 'show', dir);
    // a cgroup being torn down can show as `null`: nothing attached
    if (shown === null) return [];
    if (!Array.isArray(shown)) throw new Error(`not a list: ${JSON.stringify(shown)}`);
    return shown.map((p: Attached) => ({ id: p.id, name: p.name }));
  } catch (err) {
    if (!fs.existsSync(dir)) return [];
    throw err;
  }
}

/** the names of the programs of `progs` attached to the cgroup, sorted */
export const namesOf = (attached: Attached[], progs: number[]): string[] => attached.filter((p) => progs.includes(p.id)).map((p) => p.name).sort();

/** every program of `progs` attached anywhere in the cgroup v2 tree below `root` (bpftool cgroup tree) */
export const attachedBelow = (root: string, progs: number[]): string[] =>
  (bpftool('cgroup', 'tree', root) as { programs: Attached[] }[]).flatMap((c) => namesOf(c.programs, progs));

/** ids of the egress programs (their names start egress_) that a process (default: this one) holds */
export function egressProgsOf(pid: number | 'self' = 'self'): number[] {
  const held = new Set(bpfFds(pid).map((f) => Number(f.info.prog_id)).filter((id) => id > 0));
  return (bpftool('prog', 'show') as { name?: string; id: number }[]).filter((p) => p.name?.startsWith('egress_') && held.has(p.id)).map((p) => p.id);
}

/** ids of the loaded programs among `progs` */
export const stillLoaded = (progs: number[]): number[] => (bpftool('prog', 'show') as { id: number }[]).map((p) => p.id).filter((id) => progs.includes(id));

/** ids of the links of those programs */
export const linksOf = (progs: number[]): number[] => (bpftool('link', 'show') as { prog_id: number; id: number }[]).filter((l) => progs.includes(l.prog_id)).map((l) => l.id);
