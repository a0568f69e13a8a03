/**
 * Probes of what this machine can run, cached per process: root, BTF,
 * libbpf, ring buffers, tracefs (mounted when missing, as Inspektor
 * Gadget's entrypoint does) and individual hooks.
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { native } from './libbpf.ts';
import { openCpuClock } from './perf.ts';

export const TRACEFS = '/sys/kernel/tracing';
const BPF_MAP_TYPE_RINGBUF = 27;

const cache = new Map<string, string | undefined>();

/** Run a probe once; a probe returns undefined when fine, or why not. */
function probe(key: string, fn: () => string | undefined): string | undefined {
  if (!cache.has(key)) cache.set(key, fn());
  return cache.get(key);
}

export function whyNotRoot(): string | undefined {
  return probe('root', () =>
    process.getuid?.() === 0 ? undefined : 'needs root (or CAP_BPF+CAP_PERFMON+CAP_SYS_ADMIN): run with sudo');
}

export function whyNoBtf(): string | undefined {
  return probe('btf', () =>
    fs.existsSync('/sys/kernel/btf/vmlinux') ? undefined : 'the kernel has no BTF (/sys/kernel/btf/vmlinux): needs CONFIG_DEBUG_INFO_BTF=y (Linux 5.4+)');
}

export function whyNoLibbpf(): string | undefined {
  return probe('libbpf', () => {
    try {
      const n = native();
      const [major, minor] = [n.libbpf_major_version(), n.libbpf_minor_version()];
      return major >= 1 ? undefined : `libbpf ${major}.${minor} is too old: needs libbpf 1.x (Debian package libbpf1)`;
    } catch (err) {
      return (err as Error).message;
    }
  });
}

export function whyNoRingbuf(): string | undefined {
  return probe('ringbuf', () => {
    const rc = native().libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, null);
    return rc === 1 ? undefined : 'the kernel has no BPF ring buffer (Linux 5.8+)';
  });
}

function isMounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

/** Mount tracefs at /sys/kernel/tracing when it is not there; undefined when usable. */
export function whyNoTracefs(): string | undefined {
  return probe('tracefs', () => {
    if (isMounted(TRACEFS) || fs.existsSync(`${TRACEFS}/events`)) return undefined;
    if (process.getuid?.() !== 0) return `tracefs is not mounted at ${TRACEFS} and mounting it needs root`;
    try {
      execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS], { stdio: 'pipe' });
      return undefined;
    } catch (err) {
      return `tracefs is not mounted at ${TRACEFS} and mounting it failed: ${(err as Error).message.trim()}`;
    }
  });
}

/** `category/name` of a tracepoint, e.g. `syscalls/sys_enter_openat`. */
export function whyNoTracepoint(name: string): string | undefined {
  return probe(`tp:${name}`, () => {
    const tracefs = whyNoTracefs();
    if (tracefs) return tracefs;
    return fs.existsSync(`${TRACEFS}/events/${name}`) ? undefined : `tracepoint ${name} does not exist on this kernel`;
  });
}

/** A BPF iterator target such as `task`, found by its context type in the kernel BTF. */
export function whyNoIterator(target: string): string | undefined {
  return probe(`iter:${target}`, () => {
    const why = whyNoBtf();
    if (why) return why;
    const btf = fs.readFileSync('/sys/kernel/btf/vmlinux');
    return btf.includes(Buffer.from(`\0bpf_iter__${target}\0`)) ? undefined : `the kernel has no BPF iterator "${target}" (iter/task needs Linux 5.8+)`;
  });
}

const PROG_TYPE_NAMES: Record<number, string> = { 1: 'socket filter (BPF_PROG_TYPE_SOCKET_FILTER, Linux 3.19+)', 8: 'cgroup_skb (BPF_PROG_TYPE_CGROUP_SKB, Linux 4.10+)' };

/** Whether the kernel loads programs of a BPF program type (libbpf's probe loads a trivial one). */
export function whyNoProgType(type: number): string | undefined {
  return probe(`prog:${type}`, () => {
    const rc = native().libbpf_probe_bpf_prog_type(type, null);
    return rc === 1 ? undefined : `the kernel does not load ${PROG_TYPE_NAMES[type] ?? `BPF program type ${type}`} programs`;
  });
}

/** Whether this process may open a cpu-clock sampling perf event (perf_event_paranoid, CAP_PERFMON). */
export function whyNoCpuClock(): string | undefined {
  return probe('perf:cpu-clock', () => {
    try {
      native().close(openCpuClock(0, 1));
      return undefined;
    } catch (err) {
      return `needs a cpu-clock perf event (Linux 4.9+ for BPF on perf events): ${(err as Error).message}`;
    }
  });
}
