/**
 * Probes of what this machine can run, cached per process: root, BTF,
 * libbpf, ring buffers, tracefs (mounted when missing, as Inspektor
 * Gadget's entrypoint does) and individual hooks. Each returns undefined
 * when fine, else a `Reason` (reasons.ts): data, put into words at the edge.
 * Whether a gadget's object actually loads is load-probe.ts's question.
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { KernelError } from './errors.ts';
import { hasOwnBtf, kernelBtfTypes, SYSFS_BTF, whyNoKernelBtf } from './kernel-btf.ts';
import { native } from './libbpf.ts';
import { openCpuClock } from './perf.ts';
import type { Reason } from './reasons.ts';

export const TRACEFS = '/sys/kernel/tracing';
const BPF_MAP_TYPE_RINGBUF = 27;

const cache = new Map<string, Reason | undefined>();

/** Run a probe once; a probe returns undefined when fine, or why not. */
function probe(key: string, fn: () => Reason | undefined): Reason | undefined {
  if (!cache.has(key)) cache.set(key, fn());
  return cache.get(key);
}

export function whyNotRoot(): Reason | undefined {
  return probe('root', () => {
    const uid = process.getuid?.() ?? -1;
    return uid === 0 ? undefined : { kind: 'not-root', uid };
  });
}

/** The kernel's BTF, or one standing in for it (--btf, a btfgen folder): kernel-btf.ts, which keeps the answer. */
export function whyNoBtf(): Reason | undefined {
  return whyNoKernelBtf();
}

export function whyNoLibbpf(): Reason | undefined {
  return probe('libbpf', () => {
    try {
      const n = native();
      const [major, minor] = [n.libbpf_major_version(), n.libbpf_minor_version()];
      return major >= 1 ? undefined : { kind: 'old-libbpf', version: `${major}.${minor}` };
    } catch (err) {
      // koffi's dlopen failure: its message is the only account there is
      return { kind: 'no-libbpf', error: (err as Error).message };
    }
  });
}

export function whyNoRingbuf(): Reason | undefined {
  return probe('ringbuf', () => {
    const rc = native().libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, null);
    return rc === 1 ? undefined : { kind: 'no-ringbuf' };
  });
}

function isMounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

/** Mount tracefs at /sys/kernel/tracing when it is not there; undefined when usable. */
export function whyNoTracefs(): Reason | undefined {
  return probe('tracefs', () => {
    if (isMounted(TRACEFS) || fs.existsSync(`${TRACEFS}/events`)) return undefined;
    if (process.getuid?.() !== 0) return { kind: 'no-tracefs', path: TRACEFS };
    const r = spawnSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS], { stdio: 'pipe' });
    if (r.status === 0) return undefined;
    // mount(8) reports the kernel's refusal only as text: its own words are the reason
    return { kind: 'no-tracefs', path: TRACEFS, mountError: r.error?.message ?? (r.stderr.toString().trim() || `mount exited with ${r.status}`) };
  });
}

/** `category/name` of a tracepoint, e.g. `syscalls/sys_enter_openat`. */
export function whyNoTracepoint(name: string): Reason | undefined {
  return probe(`tp:${name}`, () => whyNoTracefs() ?? (fs.existsSync(`${TRACEFS}/events/${name}`) ? undefined : { kind: 'tracepoint', name }));
}

/**
 * A BPF iterator target such as `task`, found by its context type in the
 * kernel BTF (or the --btf file). A btfgen folder's minimized BTF cannot
 * tell: the load probe decides.
 */
export function whyNoIterator(target: string): Reason | undefined {
  return probe(`iter:${target}`, () => {
    const why = whyNoBtf();
    if (why) return why;
    const btf = kernelBtfTypes();
    return !btf || btf.includes(Buffer.from(`\0bpf_iter__${target}\0`)) ? undefined : { kind: 'iterator', target };
  });
}

/** The kernel's own BTF, read once: the hooks that name a kernel function look their name up in it. */
let vmlinuxBtf: Buffer | undefined;
function btfHasName(name: string): boolean {
  vmlinuxBtf ??= fs.readFileSync(SYSFS_BTF);
  return vmlinuxBtf.includes(Buffer.from(`\0${name}\0`));
}

/**
 * fentry/fexit on a kernel function, or a kfunc: the name is in the kernel's
 * own BTF (a cheap first look: the load probe then tells whether the kernel
 * attaches or calls it, load-probe.ts). A --btf file does not serve: the
 * kernel resolves both in its own BTF.
 */
export function whyNoBtfFunc(name: string, use: 'fentry' | 'kfunc'): Reason | undefined {
  return probe(`${use}:${name}`, () => {
    const why = whyNoBtf();
    if (why) return why;
    if (!hasOwnBtf()) return { kind: 'kernel-btf', hooks: use === 'fentry' ? [`fentry/${name}`] : [], ksyms: use === 'kfunc' ? [name] : [] };
    return btfHasName(name) ? undefined : { kind: 'btf-func', name, use };
  });
}

/** Kernel functions kprobes may hook (ftrace's list; the first word of each line), read once. */
let traceable: Set<string> | undefined;

/** A kprobe on a kernel function: the kernel has kprobes and the function is traceable. */
export function whyNoKprobe(fn: string): Reason | undefined {
  return probe(`kprobe:${fn}`, () => {
    if (!fs.existsSync('/sys/bus/event_source/devices/kprobe')) return { kind: 'kprobes' };
    const why = whyNoTracefs();
    if (why) return why;
    if (!traceable) {
      traceable = new Set();
      try {
        for (const line of fs.readFileSync(`${TRACEFS}/available_filter_functions`, 'latin1').split('\n')) traceable.add(line.split(' ', 1)[0]);
      } catch {
        // no ftrace: kprobes may still attach (they do not need it); the attach will tell
        return undefined;
      }
    }
    return traceable.has(fn) ? undefined : { kind: 'kprobe', name: fn };
  });
}

/** Whether the kernel loads programs of a BPF program type (libbpf's probe loads a trivial one). */
export function whyNoProgType(type: number): Reason | undefined {
  return probe(`prog:${type}`, () => (native().libbpf_probe_bpf_prog_type(type, null) === 1 ? undefined : { kind: 'prog-type', type }));
}

/** Whether this process may open a cpu-clock sampling perf event (perf_event_paranoid, CAP_PERFMON). */
export function whyNoCpuClock(): Reason | undefined {
  return probe('perf:cpu-clock', () => {
    try {
      native().close(openCpuClock(0, 1));
      return undefined;
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      return { kind: 'perf-event', event: 'cpu-clock', errno: err.errno };
    }
  });
}
