/** Child processes the kernel tests trace, and what /proc and cgroup v2 say about them. */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';

export interface Finished {
  pid: number;
  code: number | null;
  stdout: string;
}

/** Run a command to its end; its stdout is captured. */
export async function run(file: string, args: string[], opts: SpawnOptions = {}): Promise<Finished> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'], ...opts });
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => chunks.push(c));
  const [code] = (await once(child, 'close')) as [number | null];
  if (child.pid === undefined) throw new Error(`${file} did not start`);
  return { pid: child.pid, code, stdout: Buffer.concat(chunks).toString() };
}

/** A long-running child, killed (and waited for) after the test. */
export async function background(t: TestContext, file: string, args: string[], opts: SpawnOptions = {}): Promise<ChildProcess> {
  const child = spawn(file, args, { stdio: 'ignore', ...opts });
  await once(child, 'spawn'); // exec has succeeded: the child runs `file`
  t.after(() => stopChild(child));
  return child;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = once(child, 'close');
  child.kill('SIGKILL');
  await closed;
}

/** The first line of /proc/<pid>/status named `key`, split into its values. */
/**
 * A copy of the system's `tool` (e.g. dd) in `dir` under a name of its own: the comm of the
 * processes run from it, a kernel filter (comm==) no other process on the machine matches.
 */
export function uniqueCommCopy(dir: string, tool: string): { bin: string; comm: string } {
  const comm = `${tool.slice(0, 4)}${Math.random().toString(36).slice(2, 10)}`;
  const bin = path.join(dir, comm);
  fs.copyFileSync(execFileSync('sh', ['-c', 'command -v "$0"', tool], { encoding: 'utf8' }).trim(), bin);
  fs.chmodSync(bin, 0o755);
  return { bin, comm };
}

export function procStatus(pid: number, key: string): string[] {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${key}:`));
  if (!line) throw new Error(`/proc/${pid}/status has no ${key}`);
  return line.slice(key.length + 1).trim().split(/\s+/);
}

/** The mount namespace inode of a process (what BPF reads as nsproxy->mnt_ns->ns.inum). */
export function mntnsOf(pid: number): number {
  return Number(fs.statSync(`/proc/${pid}/ns/mnt`).ino);
}

export interface Cgroup2Mount {
  /** where the cgroup2 filesystem is mounted */
  dir: string;
  /** the cgroup path of the mount's root ("/" unless in a cgroup namespace) */
  root: string;
}

/** The cgroup v2 mount, from /proc/self/mountinfo (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems). */
export function cgroup2Mount(): Cgroup2Mount {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.split(' ')[0] !== 'cgroup2') continue;
    const f = pre.split(' ');
    return { dir: f[4], root: f[3] };
  }
  throw new Error('no cgroup2 filesystem in /proc/self/mountinfo');
}

/** The cgroup v2 directory of a process ("0::" line of /proc/<pid>/cgroup under the cgroup2 mount). */
export function cgroupDirOf(pid: number): string {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`/proc/${pid}/cgroup has no cgroup v2 ("0::") line`);
  const mount = cgroup2Mount();
  return path.join(mount.dir, path.relative(mount.root, line.slice(3)));
}

/** The cgroup id BPF sees (bpf_get_current_cgroup_id): the inode of the cgroup's directory. */
export function cgroupIdOf(dir: string): bigint {
  return fs.statSync(dir, { bigint: true }).ino;
}

export interface FreshCgroup {
  dir: string;
  id: bigint;
  /** depth below the cgroup v2 root, as bpf_get_current_ancestor_cgroup_id counts */
  level: number;
}

/** A new, empty cgroup v2 directory, removed after the test (once its processes are gone). */
export function freshCgroup(t: TestContext, name: string): FreshCgroup {
  const mount = cgroup2Mount();
  const dir = path.join(mount.dir, name);
  fs.mkdirSync(dir);
  t.after(() => fs.rmdirSync(dir));
  const level = path.join(mount.root, name).split('/').filter(Boolean).length;
  return { dir, id: cgroupIdOf(dir), level };
}
