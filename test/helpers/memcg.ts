/**
 * Memory cgroups for tests that cause OOM kills: on whichever hierarchy has
 * the memory controller (cgroup v1's memory mount on hybrid systems such as
 * this one, cgroup v2 elsewhere), with a limit, removed after the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { cgroup2Mount, cgroupIdOf } from './proc.ts';

export interface MemoryCgroup {
  dir: string;
  version: 1 | 2;
  /** write a pid here to move the process in */
  procs: string;
  /** on cgroup v2 the memory cgroup is a v2 cgroup too: its id and depth, as a workload cgroup */
  v2?: { id: bigint; level: number };
}

/** Where the memory controller is: its v1 mount, or the cgroup v2 mount when it is enabled there. */
export function memoryControllerMount(): { dir: string; version: 1 | 2 } {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    const [type, , options] = post?.split(' ') ?? [];
    if (type === 'cgroup' && options.split(',').includes('memory')) return { dir: pre.split(' ')[4], version: 1 };
  }
  const v2 = cgroup2Mount().dir;
  if (fs.readFileSync(path.join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) return { dir: v2, version: 2 };
  throw new Error('no memory controller: neither a cgroup v1 "memory" mount nor "memory" in the cgroup v2 root\'s cgroup.controllers');
}

/**
 * A new memory cgroup limited to `limitBytes`, with no swap to escape to.
 * Removed after the test: its processes must be gone by then (the test kills
 * them; an OOM kill does).
 */
export function memoryCgroup(t: TestContext, name: string, limitBytes: number): MemoryCgroup {
  const mount = memoryControllerMount();
  const dir = path.join(mount.dir, name);
  if (mount.version === 2) {
    // the children of the root get the controller only when the root's subtree_control enables it
    fs.writeFileSync(path.join(mount.dir, 'cgroup.subtree_control'), '+memory');
  }
  fs.mkdirSync(dir);
  t.after(() => fs.rmdirSync(dir));
  if (mount.version === 1) {
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
    // with swap, v1 swaps until memory+swap reaches memsw's limit
    const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
    if (fs.existsSync(memsw)) fs.writeFileSync(memsw, String(limitBytes));
    return { dir, version: 1, procs: path.join(dir, 'cgroup.procs') };
  }
  fs.writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
  const swap = path.join(dir, 'memory.swap.max');
  if (fs.existsSync(swap)) fs.writeFileSync(swap, '0');
  const v2 = cgroup2Mount();
  const level = path.join(v2.root, name).split('/').filter(Boolean).length;
  return { dir, version: 2, procs: path.join(dir, 'cgroup.procs'), v2: { id: cgroupIdOf(dir), level } };
}

/** What the kernel's OOM killer printed when it killed a process, in kB (mm/oom_kill.c, __oom_kill_process). */
export interface OomKillLine {
  pid: number;
  comm: string;
  total_vm: number;
  anon_rss: number;
  file_rss: number;
  shmem_rss: number;
  uid: number;
  oom_score_adj: number;
}

/**
 * The kernel's own "Killed process PID (COMM) total-vm:…kB, anon-rss:…kB, file-rss:…kB,
 * shmem-rss:…kB, UID:… pgtables:…kB oom_score_adj:…" line for `pid`, from /dev/kmsg (the
 * whole ring, read without blocking), or undefined when the ring has none. It reads the same
 * mm counters a gadget reads at mark_victim, right after it, in the same task: what they
 * held for the victim, wherever its binary lives (a tmpfs /tmp counts its mapped pages as
 * shmem on some kernels and not on others).
 */
export function oomKillLine(pid: number): OomKillLine | undefined {
  const fd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const buf = Buffer.alloc(8192);
  let found: OomKillLine | undefined;
  try {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break; // the end of the ring
        if (code === 'EPIPE') continue; // records overwritten while reading: go on from the next
        throw err;
      }
      const text = buf.toString('utf8', 0, n);
      const m = /Killed process (\d+) \((.*?)\) total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB, UID:(\d+) .*oom_score_adj:(-?\d+)/.exec(text);
      if (m && Number(m[1]) === pid) {
        found = { pid, comm: m[2], total_vm: +m[3], anon_rss: +m[4], file_rss: +m[5], shmem_rss: +m[6], uid: +m[7], oom_score_adj: +m[8] };
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return found;
}
