/**
 * Why a gadget cannot run here, as data. The probes (features.ts,
 * load-probe.ts) return a `Reason`; callers pass it on untouched (prepare.ts,
 * the modes, `gadgets --json`) and `explain` is the one place it becomes
 * words, so no caller ever parses a sentence another one wrote.
 */
import { errnoName, describeErrno } from './errno.ts';

/** Why a btfgen folder (kernel-btf.ts) gave no BTF for this kernel. */
export interface BtfgenMiss {
  dir: string;
  why: 'no-folder' | 'no-entry' | 'other-build' | 'untrusted' | 'bad-folder';
  detail?: string;
}

export type Reason =
  | { kind: 'not-root'; uid: number }
  /** no BTF for this kernel's types: not its own at `path`, no --btf, no btfgen folder with its release */
  | { kind: 'no-btf'; path: string; release: string; dirs?: BtfgenMiss[] }
  /** --btf or GADGET_RUN_BTF (`from`) names a file that is not usable as this kernel's BTF */
  | { kind: 'bad-btf'; file: string; from: string; error: string }
  /** programs the kernel checks against its own BTF (their sections: tp_btf/…, iter/…, fentry/…) and typed ksyms (kfuncs), on a kernel without one libbpf can read */
  | { kind: 'kernel-btf'; object?: string; hooks: string[]; ksyms: string[] }
  /** the btfgen folder in use was made for other builds of this object: its minimized BTF may lack what the object needs */
  | { kind: 'btfgen-object'; object: string; dir: string }
  /** libbpf.so.1 could not be opened: koffi's dlopen error is all there is */
  | { kind: 'no-libbpf'; error: string }
  | { kind: 'old-libbpf'; version: string }
  | { kind: 'no-ringbuf' }
  /** tracefs is not mounted, and we could not mount it (`mountError` absent: not root, so we did not try) */
  | { kind: 'no-tracefs'; path: string; mountError?: string }
  | { kind: 'tracepoint'; name: string }
  /** a gadget whose tracepoints are all optional found none of them */
  | { kind: 'no-tracepoint'; names: string[] }
  | { kind: 'iterator'; target: string }
  /** the kernel has no kprobes (CONFIG_KPROBES off) */
  | { kind: 'kprobes' }
  /** kprobes exist, but not on this function (gone, renamed, inlined or notrace) */
  | { kind: 'kprobe'; name: string }
  /** a kernel function fentry hooks or a kfunc the programs call, missing from the kernel's BTF */
  | { kind: 'btf-func'; name: string; use: 'fentry' | 'kfunc' }
  /** none of a gadget's variants runs here: each one's own reason, in order of preference */
  | { kind: 'variants'; tried: { variant: string; why: Reason }[] }
  | { kind: 'prog-type'; type: number }
  | { kind: 'perf-event'; event: 'cpu-clock'; errno: number }
  | { kind: 'mode'; mode: string }
  /** the compiled object is not where the objects are looked for */
  | { kind: 'no-object'; object: string; dir: string }
  /** the object does not load on this kernel (load-probe.ts): libbpf's own words in `detail` */
  | { kind: 'load'; object: string; errno: number; program?: string; verifier: boolean; detail: string[]; log?: string };

/** A reason in three parts, for a person or a JSON reader: what is needed, why it is not there, what to do. */
export interface Explained {
  hook: string;
  reason: string;
  hint?: string;
}

const BTFGEN_MISS: Record<BtfgenMiss['why'], string> = {
  'no-folder': 'no such folder',
  'no-entry': 'not this kernel',
  'other-build': 'another build of this release',
  untrusted: 'others may write it, so it is not read',
  'bad-folder': 'not a usable btfgen folder',
};

const PROG_TYPES: Record<number, { name: string; since: string }> = {
  1: { name: 'socket filter programs (BPF_PROG_TYPE_SOCKET_FILTER)', since: 'Linux 3.19+' },
  8: { name: 'cgroup_skb programs (BPF_PROG_TYPE_CGROUP_SKB)', since: 'Linux 4.10+' },
};

export function explain(r: Reason): Explained {
  switch (r.kind) {
    case 'not-root':
      return { hook: 'root', reason: `running as uid ${r.uid}`, hint: 'run with sudo (or with CAP_BPF+CAP_PERFMON+CAP_SYS_ADMIN)' };
    case 'no-btf': {
      const dirs = (r.dirs ?? []).map((d) => `${d.dir}: ${BTFGEN_MISS[d.why]}${d.detail ? ` (${d.detail})` : ''}`);
      return {
        hook: 'the kernel\'s BTF (its types, for CO-RE)',
        reason: `${r.path} is missing (a kernel built without CONFIG_DEBUG_INFO_BTF)${dirs.length ? `, and no btfgen folder has ${r.release}: ${dirs.join('; ')}` : ''}`,
        hint: `give this kernel's vmlinux BTF with --btf FILE or GADGET_RUN_BTF=FILE (BTFHub's archive has one for most distribution kernels, or make it from the kernel's debug symbols: pahole --btf_encode_detached=FILE vmlinux), or a \`gadget-run btfgen\` folder in GADGET_RUN_BTF_DIR (docs/kernels.md)`,
      };
    }
    case 'bad-btf':
      return { hook: `the kernel BTF that ${r.from} names`, reason: `${r.file}: ${r.error}`, hint: 'give the vmlinux BTF of the running kernel (uname -r), raw or a vmlinux ELF with a .BTF section' };
    case 'kernel-btf':
      return {
        hook: `the kernel's own BTF for ${[...r.hooks, ...r.ksyms.map((k) => `kfunc ${k}`)].join(', ')}`,
        reason: '/sys/kernel/btf/vmlinux is missing (the kernel checks tp_btf, iterator and fentry programs and kfuncs against its own BTF; a --btf file serves CO-RE relocations only)',
        hint: 'a kernel built with CONFIG_DEBUG_INFO_BTF=y has it',
      };
    case 'btfgen-object':
      return {
        hook: `minimized BTF for ${r.object}`,
        reason: `the btfgen folder ${r.dir} was made for other builds of the objects`,
        hint: 'run gadget-run btfgen again with these objects (docs/kernels.md), or give --btf FILE',
      };
    case 'no-libbpf':
      return { hook: 'libbpf 1.x', reason: r.error, hint: 'install it (Debian: apt-get install libbpf1)' };
    case 'old-libbpf':
      return { hook: 'libbpf 1.x', reason: `found libbpf ${r.version}`, hint: 'install libbpf 1.x (Debian: apt-get install libbpf1)' };
    case 'no-ringbuf':
      return { hook: 'the BPF ring buffer', reason: 'this kernel does not create ring buffer maps', hint: 'Linux 5.8+ has it' };
    case 'no-tracefs':
      return r.mountError === undefined
        ? { hook: `tracefs at ${r.path}`, reason: 'it is not mounted and mounting it needs root', hint: `run as root, or mount it: mount -t tracefs tracefs ${r.path}` }
        : { hook: `tracefs at ${r.path}`, reason: `it is not mounted and mounting it failed: ${r.mountError}`, hint: `mount it: mount -t tracefs tracefs ${r.path}` };
    case 'tracepoint':
      return { hook: `tracepoint ${r.name}`, reason: 'this kernel does not have it' };
    case 'no-tracepoint':
      return { hook: `one of the tracepoints ${r.names.join(', ')}`, reason: 'this kernel has none of them' };
    case 'kprobes':
      return { hook: 'kprobes', reason: 'this kernel is built without them (CONFIG_KPROBES)' };
    case 'kprobe':
      return { hook: `a kprobe on ${r.name}`, reason: 'the kernel function is not traceable here (not in available_filter_functions: renamed, inlined or notrace)' };
    case 'btf-func':
      return r.use === 'fentry'
        ? { hook: `fentry on ${r.name}`, reason: 'the kernel function is not in the kernel\'s BTF' }
        : { hook: `the kfunc ${r.name}`, reason: 'this kernel does not have it' };
    case 'variants':
      return {
        hook: `one of its hooks (${r.tried.map((t) => t.variant).join(', ')})`,
        reason: r.tried.map((t) => `${t.variant}: ${describeReason(t.why).replace(/^needs /, '')}`).join(' | '),
      };
    case 'iterator':
      return { hook: `BPF iterator ${r.target}`, reason: 'this kernel does not have it', hint: 'BPF iterators over tasks need Linux 5.8+' };
    case 'prog-type': {
      const t = PROG_TYPES[r.type];
      return { hook: t?.name ?? `BPF program type ${r.type}`, reason: 'this kernel does not load them', ...(t ? { hint: `${t.since} has them` } : {}) };
    }
    case 'perf-event':
      return {
        hook: `a ${r.event} perf event`,
        reason: `perf_event_open: ${errnoText(r.errno)}`,
        hint: ['EACCES', 'EPERM'].includes(errnoName(r.errno)) ? 'lower /proc/sys/kernel/perf_event_paranoid or grant CAP_PERFMON' : 'BPF on perf events needs Linux 4.9+',
      };
    case 'mode':
      return { hook: `mode ${r.mode}`, reason: 'gadget-run does not implement it yet' };
    case 'no-object':
      return { hook: `its object ${r.object}`, reason: `it is not in ${r.dir}`, hint: 'build the objects with `make -C bpf` (or ./scripts/setup), or point --objects (GADGET_RUN_OBJECTS) at them' };
    case 'load': {
      // the detail already names the program the verifier refused
      const who = r.verifier ? 'the verifier rejected it' : 'libbpf refused it';
      return {
        hook: `its object ${r.object} to load`,
        reason: r.detail.join('; ') || errnoText(r.errno),
        hint: `${who} on this kernel (${errnoName(r.errno)})${r.log ? `; full log in ${r.log}` : ''}`,
      };
    }
  }
}

/** One line: `needs HOOK: REASON; HINT`. */
export function describeReason(r: Reason): string {
  const { hook, reason, hint } = explain(r);
  return `needs ${hook}: ${reason}${hint ? `; ${hint}` : ''}`;
}

/** What `gadgets` and a step's summary say about a gadget that cannot run here. */
export function unsupportedMessage(gadget: string, r: Reason): string {
  return `${gadget}: unsupported here — ${describeReason(r)}`;
}

function errnoText(errno: number): string {
  return `${errnoName(errno)} (${describeErrno(errno)})`;
}
