import type { FieldType } from '../runner/filter.ts';
import type { ConstantValue } from '../ebpf/object.ts';

export type GadgetMode = 'stream' | 'snapshot' | 'interval' | 'profile';

/**
 * An output field of a gadget's events. By default it is the event struct
 * member of the same name, decoded by its BTF type (integers, char arrays as
 * strings). The other decoders name what the raw bytes mean.
 */
export interface FieldSpec {
  name: string;
  type: FieldType;
  description: string;
  /** struct member to read; defaults to `name` */
  member?: string;
  /**
   * - `timestamp`: CLOCK_BOOTTIME ns → RFC 3339 wall-clock time with ns
   * - `cstrings`: NUL-separated strings, `length` member gives the bytes used
   * - `bool`: an integer member, non-zero is true
   * - `compute`: a JavaScript expression over earlier fields (`f.ret`), for derived values
   */
  decode?: 'timestamp' | 'cstrings' | 'bool' | 'compute';
  length?: string;
  compute?: string;
}

/** A BPF hook the gadget needs, probed before load. */
export type Requirement =
  | { tracepoint: string; optional?: boolean }
  | { iterator: string };

export interface GadgetDefinition {
  /** `category/name`, as in Inspektor Gadget */
  id: string;
  description: string;
  mode: GadgetMode;
  /** file under build/bpf/ */
  object: string;
  /** the event (or entry) struct in the object's BTF */
  struct: string;
  fields: FieldSpec[];
  /** fields whose `==` filter the BPF program applies (see bpf/include/gadget.h) */
  kernelFilters: readonly string[];
  requires: Requirement[];
  /** JSON Schema of the step's `params` */
  params?: Record<string, unknown>;
  /** BPF constants derived from the step's params */
  constants?(params: Record<string, unknown>): Record<string, ConstantValue>;
  /** for snapshot mode: the iter/* program to run */
  iterator?: string;
}

export function fieldTypes(def: GadgetDefinition): Map<string, FieldType> {
  return new Map(def.fields.map((f) => [f.name, f.type]));
}

/** What the runner hands a step when it opens it. */
export interface StepContext {
  /** the step's id, for messages */
  id: string;
  params: Record<string, unknown>;
  /** filter predicates, not yet split between kernel and user space */
  filter: import('../runner/filter.ts').Predicate[];
  /** the workload's cgroup v2 (id = inode, level = depth below the root) */
  cgroup?: { id: bigint; level: number };
  /** NDJSON file the step streams its events to */
  spoolPath: string;
  /** wall-clock ns minus CLOCK_BOOTTIME ns */
  bootToWallNs: bigint;
  /** directory holding the compiled .bpf.o files */
  objectDir: string;
  /** ring buffer bytes (power of two, multiple of the page size) */
  ringBytes: number;
  /** snapshot mode: ms after start to take the snapshot */
  delayMs: number;
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
}

/** A loaded, attached gadget. The runner owns time: it decides when to stop. */
export interface StepSession {
  /** resolves when the step completed on its own (a snapshot taken); a stream never does */
  readonly finished: Promise<void>;
  /** programs attached (for the "all attached" log line and leak checks) */
  readonly attached: number;
  start(): void;
  /** detach, drain what is left, flush, release every kernel object */
  stop(): Promise<StepOutcome>;
}
