/**
 * What a run must not leave behind once it is over: processes of its
 * workload, its workload cgroup, BPF objects held by this process. Checked
 * per run (a token in the workload's command line, the run's pid in cgroup
 * names, this process's fds), never machine-wide, so busy neighbours do not
 * matter.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ownerOf } from '../../src/runner/ownership.ts';
import { cgroupParent } from '../../src/runner/workload.ts';
import { bpfFds, type BpfFd } from './kernel.ts';

export interface RunIdentity {
  /** the gadget-run process (the CLI's pid, or this process for in-process runs) */
  pid: number;
  /** a string only this run's workload carries in its processes' command lines */
  token?: string;
}

/** Processes other than this one whose command line contains `token`. */
export function processesWith(token: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue; // exited while we looked
    }
    if (cmdline.includes(token)) out.push({ pid: Number(name), cmdline });
  }
  return out;
}

/** Workload cgroups under <cgroup2>/gadget-run/ that the run with this pid made. */
export function cgroupsOf(pid: number): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(cgroupParent());
  } catch {
    return [];
  }
  return names.filter((n) => ownerOf(n)?.pid === pid).map((n) => path.join(cgroupParent(), n));
}

/** A description of everything the run left behind; empty when it left nothing. */
export function leftBehind(run: RunIdentity): string[] {
  const left: string[] = [];
  if (run.token) for (const p of processesWith(run.token)) left.push(`process ${p.pid} of the workload still runs: ${p.cmdline}`);
  for (const dir of cgroupsOf(run.pid)) left.push(`workload cgroup left: ${dir}`);
  return left;
}

/** BPF fds this process holds now that it did not hold in `before`. */
export function newBpfFds(before: BpfFd[]): BpfFd[] {
  // the kernel object's id, not the fd number alone: a closed fd's number is reused
  const key = (f: BpfFd) => `${f.fd} ${f.kind} ${f.info.prog_id ?? ''} ${f.info.map_id ?? ''} ${f.info.link_id ?? ''}`;
  const had = new Set(before.map(key));
  return bpfFds().filter((f) => !had.has(key(f)));
}
