import type { ContainerRecord, ContainerScope, ContainerSelection } from '../containers/selection.ts';
import type { ContainerTable } from '../containers/table.ts';
import type { BpfObject, ConstantValue } from '../ebpf/object.ts';
import type { BtfStruct } from '../ebpf/btf.ts';
import type { Flow } from './packet/ip.ts';

/** The JSON type of a field's value, as filters and transforms see it. */
/** 'object[]': a list of records inside a document row (advise gadgets); not decoded from a struct */
export type FieldType = 'number' | 'string' | 'string[]' | 'boolean' | 'object[]';

/**
 * How a field's value comes from the event struct; each kind is one entry of
 * the codec's kind table (src/steps/codec.ts): how it is read, how it is
 * written and its worst-case bytes.
 * - `int` (default for an integer member): the number
 * - `cstring` (default for a char array): NUL-terminated string
 * - `timestamp`: CLOCK_BOOTTIME ns (u64) → RFC 3339 wall-clock time with ns
 * - `cstrings`: NUL-separated strings; the `length` member gives the bytes used
 * - `bool`: an integer member, non-zero is true
 * - `ipaddr`: 16 bytes (u8[16] or __u32[4]) + `family` member (AF_INET 2, AF_INET6 10)
 *   → "127.0.0.1" or RFC 5952 IPv6; family 0 → ""
 * - `port`: a __u16 in network byte order → number
 * - `enum`: integer → `names[value]`, unknown values as decimal text (type 'string')
 * - `flags`: integer → names of the set bits, ascending, joined by '|', unknown bits
 *   as 0x…; 0 → `names[0]` or "" (type 'string')
 * - `u64str`: u64 → exact decimal string
 * - `derive`: `derive.fn` over the decoded values of `derive.from` (earlier fields)
 */
export type DecodeKind =
  | 'int' | 'cstring' | 'timestamp' | 'cstrings' | 'bool' | 'ipaddr' | 'port' | 'enum' | 'flags' | 'u64str' | 'derive';

/** A field computed from other fields' decoded values. */
export interface Derive {
  /** fields (declared before this one) whose decoded values `fn` receives, in order */
  from: string[];
  fn: (...values: any[]) => number | string | boolean | string[];
  /**
   * For 'string' and 'string[]' derives: the most bytes of the value's JSON
   * text (quotes included), so the codec can size its lines; a longer value
   * is a bug in the gadget and fails the write with the field's name.
   */
  maxBytes?: number;
}

/**
 * An output field of a gadget's events. By default it is the event struct
 * member of the same name, decoded by its BTF type (integers, char arrays as
 * strings); `decode` names what the raw bytes mean otherwise.
 */
export interface FieldSpec {
  name: string;
  type: FieldType;
  description: string;
  /** struct member to read; defaults to `name` */
  member?: string;
  /** default: an integer member → 'int', a char array → 'cstring' */
  decode?: DecodeKind;
  /** 'cstrings': the member holding the bytes used */
  length?: string;
  /** 'ipaddr': the member holding the address family */
  family?: string;
  /**
   * 'enum': value → name; 'flags': bit value → name. On a 'number' field, the
   * names a filter may use for values (`signal==SIGKILL`).
   */
  names?: Readonly<Record<number, string>>;
  /** 'derive': how the value is computed */
  derive?: Derive;
}

/**
 * A field whose `==` filter the BPF program applies: the `const volatile` in
 * .rodata it is written to before load (bpf/include/filter.h).
 */
export interface KernelFilter {
  constant: string;
  /** the constant's size: 4 or 8 for an unsigned integer, the array size for a string (NUL included) */
  bytes: number;
  /** the value that means "no filter" (default 0 or ""): a filter for it stays in user space */
  none?: number;
}

/** field name → its kernel filter; the gadget's declaration is the one list */
export type KernelFilters = Readonly<Record<string, KernelFilter>>;

/** Maps a gadget sizes from its params: what --limit-ring counts, and what a refusal says. */
export interface KernelMemory {
  bytes: number;
  /** the maps and their sizes, e.g. "1024 slots × 16 cgroups × 384 bytes" */
  what: string;
  /** the params that make it smaller, e.g. "params.slots or params.cgroups" */
  lower: string;
}

/** A BPF hook the gadget needs, probed before load. */
export type Requirement =
  | { tracepoint: string; optional?: boolean }
  | { iterator: string }
  /** a SEC("perf_event") program on cpu-clock sampling events (one per CPU) */
  | { perfEvent: 'cpu-clock' }
  /** a kprobe/kretprobe on this kernel function: kprobes enabled and the function traceable */
  | { kprobe: string }
  /** fentry/fexit on this kernel function: its name in the kernel's BTF (the load probe tells the rest) */
  | { fentry: string }
  /** a kfunc the programs call: its name in the kernel's BTF */
  | { kfunc: string }
  /** a program the runner attaches itself (a cgroup hook, a socket filter): the load probe says whether this kernel has its type */
  | { program: string };

/**
 * One way to hook a gadget. A gadget lists them in order of preference
 * (tp_btf, raw_tp, tracepoint, fentry, kprobe); the probe (`gadgets`, and
 * every step's preparation) takes the first whose hooks are here and whose
 * programs load and verify on this kernel (prepare.ts selectVariant).
 */
export interface GadgetVariant {
  /** what `gadgets` shows as the hook used: 'tracepoint capability/cap_capable', 'kprobe cap_capable' */
  name: string;
  /** besides the gadget's own `requires` (what every variant needs) */
  requires: Requirement[];
  /**
   * the object's programs this variant loads: the programs any other variant
   * names are left out; programs no variant names are always loaded
   */
  programs: string[];
  /** its own object under build/bpf/, when not the gadget's `object` */
  object?: string;
}

/** What every gadget declares, whatever its mode. */
export interface GadgetBase {
  /** `category/name`, as in Inspektor Gadget */
  id: string;
  description: string;
  /** file under build/bpf/ */
  object: string;
  /** the event (or entry) struct in the object's BTF */
  struct: string;
  fields: FieldSpec[];
  /** fields whose `==` filter the BPF program applies, and the constants it reads */
  kernelFilters: KernelFilters;
  /** the hooks every variant needs (all of them, when the gadget has no `variants`) */
  requires: Requirement[];
  /** ways to hook it, in order of preference; absent: one way, `requires` and every program */
  variants?: GadgetVariant[];
  /**
   * the one variant to use (its name), as GADGET_RUN_VARIANT=gadget=variant pins it: the
   * others are never chosen (hooks.ts pinnedVariant); where it cannot run, the gadget cannot
   */
  pinnedVariant?: string;
  /** JSON Schema of the step's `params` */
  params?: Record<string, unknown>;
  /** BPF constants derived from the step's params */
  constants?(params: Record<string, unknown>): Record<string, ConstantValue>;
  /**
   * Kernel memory the step's params size at load beyond its mode's buffers
   * (traceloop's slot array), counted against --limit-ring with them.
   */
  kernelMemory?(params: Record<string, unknown>): KernelMemory;
  /**
   * The step's result is one document (its single row), not a list of
   * events: a .json output writes the document itself (advise gadgets).
   */
  document?: true;
  /**
   * A markdown section for report.md made from the step's captured rows
   * (profile/block-io's histogram bars); evaluation calls it.
   */
  report?(rows: Record<string, unknown>[]): string;
  /**
   * An advise gadget's document generator: at evaluation, the step's captured
   * rows (with their container fields) and the run's container table become
   * the step's result (advise/network-policy: NetworkPolicy objects), which
   * the transform, assertions and outputs then see.
   */
  advise?: {
    generate(rows: Record<string, unknown>[], containers: ContainerTable | undefined, step: AdviseStep): Record<string, unknown>[];
    /**
     * the top-level fields of the documents for the step's params (advise/seccomp-profile's
     * `document` chooses them): what transforms and assertions may read (filters still see the events' fields)
     */
    fields(params: Record<string, unknown>): string[];
  };
  /**
   * Output formats of the gadget's own, by file extension (no dot): the text
   * written from the step's result rows (traceloop: `strace`). Evaluation
   * offers them next to the formats every step has (src/runner/artifacts.ts).
   */
  outputs?: Readonly<Record<string, OutputWriter>>;
  /**
   * What a container selection (`containers:`, or a cluster run's -n/-p/-c/-l)
   * does for this gadget: `capture` (default) narrows what the kernel records
   * to the selected containers; `documents` records the whole node and
   * generates documents only for the selected containers (advise/network-policy:
   * a peer on the node is known by its own cgroup, so it must be recorded too);
   * `none`: the gadget is node-wide (block requests, a network namespace's
   * sockets) and a step's own selection is an error; `workload`: the gadget
   * acts on the run itself (audit/egress enforces on it): its scope is always
   * the workload and the containers it starts, the recipe's `containers:`
   * does not narrow it, and a step's own `containers:` is an error.
   */
  selects?: 'capture' | 'documents' | 'none' | 'workload';
  /**
   * How a liveness canary proves the step hears its scope (src/steps/liveness.ts): the canary's
   * actions that make this gadget an event, or why none can be provoked safely. Absent: unproven.
   */
  liveness?: Liveness | ((params: Record<string, unknown>) => Liveness);
}

/** Events from a ring buffer, as they happen (src/steps/modes/stream.ts). */
export interface StreamGadget extends GadgetBase {
  mode: 'stream';
  /** a second source of events read in user space, opened after load and just before attach (audit/seccomp: /dev/kmsg) */
  userSource?(obj: BpfObject, layout: BtfStruct, ctx: StepContext): UserSource;
  /**
   * Programs attached to the cgroup v2 root (bpf_link, never pinned: they go with the
   * process) rather than by their section, so that they see the containers the workload
   * starts too; they must judge only the run's tasks themselves (the workload's cgroup,
   * its container set, its descendants). A step of such a gadget needs a workload and
   * the workload's container scope (`selects: 'workload'`).
   */
  cgroupPrograms?: readonly string[];
  /** fill the loaded object's maps from the step's params, before anything is attached (audit/egress: its allow-list) */
  beforeAttach?(obj: BpfObject, ctx: StepContext): void;
}

/** Packets from a socket filter or the workload's cgroup, parsed in user space (src/steps/modes/packet.ts). */
export interface PacketGadget extends GadgetBase {
  mode: 'packet';
  packet: {
    /** program names: the socket filter, cgroup_skb/ingress, cgroup_skb/egress */
    socket: string;
    ingress: string;
    egress: string;
    parser(params: Record<string, unknown>): PacketParser;
  };
}

/** One pass of BPF iterators (src/steps/modes/snapshot.ts). */
export interface SnapshotGadget extends GadgetBase {
  mode: 'snapshot';
  /** the iter/* program to run, or programs run in order (a program may write nothing and fill a map a later one reads) */
  iterator: string | string[];
  /** which of `iterator`'s programs this step runs (default: all) */
  iterators?(params: Record<string, unknown>): string[];
  /** the network namespace (a path) whose sockets the iterators walk */
  netns?(params: Record<string, unknown>): string | undefined;
}

/** Counters the kernel aggregates per key, read and cleared every interval (src/steps/modes/interval.ts). */
export interface IntervalGadget extends GadgetBase {
  mode: 'interval';
  interval: IntervalAggregation;
}

/** Samples or histograms kept in the kernel for the whole step, read once (src/steps/modes/profile.ts). */
export interface ProfileGadget extends GadgetBase {
  mode: 'profile';
  profile: ProfileHooks;
}

/**
 * A gadget, typed by its mode: each mode's own keys are required where the
 * mode needs them and absent elsewhere, and `def.mode` narrows to them.
 */
export type GadgetDefinition = StreamGadget | PacketGadget | SnapshotGadget | IntervalGadget | ProfileGadget;

/** The workflow a gadget runs in: one entry of the mode registry (src/steps/modes/index.ts). */
export type GadgetMode = GadgetDefinition['mode'];

/** The definition of a gadget of mode M. */
export type GadgetOfMode<M extends GadgetMode> = Extract<GadgetDefinition, { mode: M }>;

/** A gadget's own output format: the whole file's text from the step's result rows. */
export type OutputWriter = (rows: unknown[]) => string;

/** What an advise generator knows of its step besides the rows: its params, and the recipe's name (a document's name when nothing better names it). */
export interface AdviseStep {
  params: Record<string, unknown>;
  recipe: string;
  /** for a gadget that `selects: 'documents'`: the containers whose documents to generate (none: every one seen) */
  selection?: ContainerSelection;
}

/** A profile gadget's part of its mode: attach, take notices while sampling, read the result once. */
export interface ProfileHooks {
  /** the object has a ring buffer `events` of notices, handed to `notice` while the step runs */
  notices?: boolean;
  /** size the object's maps from the params, before load */
  beforeLoad?(obj: BpfObject, params: Record<string, unknown>): void;
  /** attach the loaded object's programs (perf events, tracepoints) and say how to read it */
  start(obj: BpfObject, params: Record<string, unknown>, ctx: StepContext): ProfileRun;
}

export interface ProfileRun {
  /** one notice record from the ring (the gadget's own struct at dv[offset, offset + length)) */
  notice?(dv: DataView, offset: number, length: number): void;
  /** after detach: the rows (objects with the gadget's fields), and what the kernel could not count */
  collect(): { rows: Record<string, unknown>[]; lost: number; warnings: string[] };
}

/**
 * A hash map the BPF program aggregates into: per key (the key struct),
 * counters and the latest names (the value struct). Fields are the key's and
 * the value's members, by name. The value's integer members are counters
 * (added up for totals); its other members are taken from the latest interval.
 */
export interface IntervalAggregation {
  map: string;
  key: string;
  value: string;
  /** default sort: field names, `-` for descending, comma-separated (IG's default per gadget) */
  sort: string;
}

/** A step's filter, parsed (src/steps/filter.ts is the language). */
export type FilterOp = '==' | '!=' | '>=' | '>' | '<=' | '<' | '~' | '!~';

export interface Predicate {
  field: string;
  op: FilterOp;
  value: string;
  /** 0-based column of the predicate in the filter text */
  column: number;
}

/** Where `write` puts bytes: a buffer and the next free position in it. */
export interface ByteWriter {
  chunk: Buffer;
  used: number;
}

export interface Codec {
  /** append the event's NDJSON line (with its newline) at w.used; false when the filter drops it */
  write: (offset: number, length: number, w: ByteWriter) => boolean;
  /** NDJSON line (no newline), or undefined when the filter drops the event */
  encode: (offset: number, length: number) => string | undefined;
  decode: (offset: number, length: number) => Record<string, unknown> | undefined;
  /** most bytes one `write` can append */
  maxLineBytes: number;
}

/**
 * Where a stream session's records go: the step's NDJSON spool (src/steps/sink.ts LineSink),
 * or a live consumer in this process (the library's stream(): src/api/stream.ts).
 */
export interface EventSink {
  /** one record, through the codec; true when it passed the filter (it counts as an event) */
  append(codec: Codec, offset: number, length: number): boolean;
  /** the end of a drain pass: what was appended may go on */
  flush(): void;
  /** after the last drain */
  close(): void;
  /** events not kept because the sink reached its limit (a spool's max_bytes) */
  readonly truncated: number;
}

/** Takes one record: `codec` reads it at [offset, offset + length) of the source's buffer. */
export type RecordSink = (codec: Codec, offset: number, length: number) => void;

/**
 * A stream gadget's second source of events, read in user space next to its
 * ring buffer (audit/seccomp: the kernel's seccomp audit records in
 * /dev/kmsg). The source writes records of the gadget's own event struct into
 * a buffer of its own and hands them, with a codec over that buffer, to the
 * stream session's sink: one spool, one filter language, one byte limit and
 * one event count for both sources (src/steps/modes/stream.ts).
 */
export interface UserSource {
  /** hand every record that is ready to `sink`; called on every pass of the drain loop, so it must not block */
  drain(sink: RecordSink): void;
  /** after detach and the ring's last drain: the records left, what the source lost and why */
  finish(sink: RecordSink): { lost: number; warnings: string[] };
  /** lost so far, for progress lines */
  lost(): number;
  close(): void;
}

/** One captured packet, as the gadget's parser gets it. */
export interface CapturedPacket {
  /** CLOCK_BOOTTIME ns */
  bootNs: bigint;
  flow: Flow;
  /** the packet reached the workload (cgroup ingress) or the node's packet socket as received */
  hook: 'socket' | 'ingress' | 'egress';
}

/** Turns packets into the gadget's own fields (undefined: not an event). Made per session, so it may keep state. */
export type PacketParser = (p: CapturedPacket) => Record<string, unknown> | undefined;

/** What the runner hands a step when it opens it. */
export interface StepContext {
  /** the step's id, for messages */
  id: string;
  params: Record<string, unknown>;
  /** filter predicates, not yet split between kernel and user space */
  filter: Predicate[];
  /** the workload's cgroup v2 (id = inode, level = depth below the root) */
  cgroup?: { id: bigint; level: number };
  /** the containers the step watches (bpf/include/containers.h); none: no container scope */
  containers?: ContainerScope;
  /** NDJSON file the step writes its events to; absent when `sink` takes them */
  spoolPath?: string;
  /**
   * A live consumer that takes the events instead of a spool (the library's stream()); only
   * modes that say `live` accept one (src/steps/modes/index.ts openSession checks)
   */
  sink?: EventSink;
  /** wall-clock ns minus CLOCK_BOOTTIME ns */
  bootToWallNs: bigint;
  /** directory holding the compiled .bpf.o files */
  objectDir: string;
  /**
   * The step's keys of its mode (buffer, delay, interval, sort, ...) as the
   * recipe wrote them; the mode plans them (src/steps/modes/index.ts).
   */
  options: Readonly<Record<string, unknown>>;
  /** most bytes of events the spool may hold; later events are counted as truncated */
  maxBytes: number;
}

export interface StepOutcome {
  /** events after filters */
  events: number;
  /** events dropped in the kernel (ring buffer full) */
  lost: number;
  /** events not written because the step reached its max_bytes */
  truncated?: number;
  warnings: string[];
  /** the containers the step knew of, when it had a container scope */
  containers?: ContainerRecord[];
  /** a snapshot stopped before its moment came: it captured nothing, and says so */
  notTaken?: boolean;
}

/** What the liveness canary helper does, one word per action (bpf/canary/canary.c; src/steps/liveness.ts). */
export type CanaryAction =
  | 'signal' | `signal=${number}` | 'file' | 'mount' | 'net' | 'tls' | 'dns' | 'egress' | 'seccomp'
  | `slow=${number}` | `slow=${number},${string}` | `disk=${string}` | 'exec';

/** A gadget's liveness: the canary's actions that make it an event in the traced scope, or why none can. */
export type Liveness = { canary: readonly CanaryAction[] } | { unproven: string };

/**
 * A session's side of the canary: it recognises the canary's events (by its
 * process) before any filter and drops them; the runner arms, polls and disarms.
 */
export interface CanaryProbe {
  /** recognise this process's events as markers from now on, and let it past the kernel's task filters */
  arm(tgid: number): void;
  /** read what the kernel has now; true once a marker came */
  check(): boolean;
  /** the proof is in: the kernel's task filters apply to it again (its events are still recognised and dropped) */
  release(): void;
  /** the canary is gone: read what is left of its events and stop recognising it */
  disarm(): void;
}

/** A loaded, attached gadget. The runner owns time: it decides when to stop. */
export interface StepSession {
  /** resolves when the step completed on its own (a snapshot taken); a stream never does */
  readonly finished: Promise<void>;
  /** programs attached (for the "all attached" log line and leak checks) */
  readonly attached: number;
  start(): void;
  /** events so far (and lost, where reading it is cheap), for progress lines; cheap enough to call every 100 ms */
  progress?(): { events: number; lost?: number };
  /** detach, drain what is left, flush, release every kernel object */
  stop(): Promise<StepOutcome>;
  /** the liveness canary's side (src/steps/liveness.ts); absent: this session cannot prove it hears */
  readonly canary?: CanaryProbe;
}
