/**
 * The interval shape (the top gadgets): the kernel aggregates into a hash map
 * (per key: counts, bytes, latency sums); every `interval` user space reads
 * and clears it in one pass (src/ebpf/map.ts drain), decodes the rows, applies
 * the user-space filter, sorts by `sort`, keeps `max_rows` and writes one
 * event per row to the spool, with `interval` (1, 2, ...), `interval_start`
 * and `interval_end`, so outputs and transforms treat rows like any events.
 * Rows past `max_rows` are not written: their counts are in the kernel's map
 * but in no output. That cut is counted and said in the step's warnings
 * (a top view of a busy node is expected to cut; a filter that should have
 * kept every row of interest then says it did not): with the default sort of
 * top/file (-reads,...), a short-lived writer's row (0 reads) sorts below
 * every row that reads, such as each new process's reads of libc, and was
 * cut without a word.
 * The runner owns the step's end: stop() detaches, then reads the last,
 * partial interval.
 *
 * `totals: true` adds, at stop, the rows of the whole step (interval 0,
 * start and end of the step): user space adds up each key's counters over
 * every interval, so totals do not depend on max_rows cutting an interval.
 */
import type { ContainerTracker } from '../../containers/selection.ts';
import type { Btf, BtfStruct } from '../../ebpf/btf.ts';
import type { KernelMap } from '../../ebpf/map.ts';
import type { BpfObject } from '../../ebpf/object.ts';
import { buildCodec, type Codec } from '../codec.ts';
import { compileObjectFilter } from '../filter.ts';
import { prepareObject } from '../prepare.ts';
import { CanaryGate, type CanaryProbe } from '../liveness.ts';
import { sinkFor } from '../sink.ts';
import { closeAll } from '../../util/close-all.ts';
import type { EventSink, FieldSpec, IntervalGadget, StepContext, StepOutcome, StepSession } from '../types.ts';
import { durationOption, planOrThrow, type Mode } from './mode.ts';

export interface SortKey {
  field: string;
  desc: boolean;
}

export interface IntervalOptions {
  intervalMs: number;
  sort: SortKey[];
  maxRows: number;
  totals: boolean;
}

/** The fields every interval gadget's rows end with; gadgets list them (`...intervalFields`). */
export const intervalFields = [
  { name: 'interval', type: 'number', description: 'which interval the row counts: 1, 2, ...; 0 for the totals over the step (totals: true)' },
  { name: 'interval_start', type: 'string', description: 'when the interval began (RFC 3339, ms)' },
  { name: 'interval_end', type: 'string', description: 'when the interval ended: when its map was read and cleared (RFC 3339, ms)' },
] as const satisfies readonly FieldSpec[];
const INTERVAL_FIELD_NAMES: ReadonlySet<string> = new Set(intervalFields.map((f) => f.name));

const DEFAULT_INTERVAL_MS = 1000;
const DEFAULT_MAX_ROWS = 20;

export const intervalMode: Mode<IntervalOptions, IntervalGadget> = {
  name: 'interval',
  description: 'the kernel aggregates per key; every interval, the top rows by `sort`',
  options: {
    interval: { $ref: '#/definitions/duration', description: 'interval gadgets: how often to read and clear the counters (default 1s)' },
    sort: {
      type: 'string',
      maxLength: 256,
      pattern: '^-?[a-z_][a-z0-9_]*(,-?[a-z_][a-z0-9_]*)*$',
      description: 'interval gadgets: fields to sort the rows by, comma-separated, `-` for descending (e.g. -wbytes,pid); default per gadget',
    },
    max_rows: { type: 'integer', minimum: 1, maximum: 100000, description: 'interval gadgets: rows kept per interval, the first by sort (default 20)' },
    totals: { type: 'boolean', description: 'interval gadgets: also write the totals over the whole step at its end, as rows of interval 0' },
  },
  untilStopped: true,
  live: true,
  plan(values, def, problem) {
    const sortText = (values.sort as string | undefined) ?? def.interval.sort;
    const sort = parseSort(sortText);
    for (const s of sort) {
      if (!def.fields.some((f) => f.name === s.field)) {
        problem('sort', `unknown field "${s.field}" of ${def.id} (known: ${def.fields.map((f) => f.name).join(', ')})`);
      }
    }
    return {
      intervalMs: values.interval === undefined ? DEFAULT_INTERVAL_MS : durationOption(values, 'interval', problem),
      sort,
      maxRows: (values.max_rows as number | undefined) ?? DEFAULT_MAX_ROWS,
      totals: (values.totals as boolean | undefined) ?? false,
    };
  },
  async open(def, ctx) {
    const o = planOrThrow(intervalMode, def, ctx.options);
    const { obj, userFilter, warnings, containers } = await prepareObject(def, ctx);
    let sink: EventSink | undefined;
    try {
      const map = obj.hashMap(def.interval.map);
      const rows = new RowReader(def, obj, map);
      const test = compileObjectFilter(userFilter, def.fields);
      sink = sinkFor(ctx);
      obj.attachAll();
      const session = new IntervalSession(obj, map, rows, (e) => test(e), sink, o, warnings, containers);
      session.canary = rows.pidOffset === undefined ? undefined : canaryOf(new CanaryGate(obj), map, rows, () => session.stopped);
      return session;
    } catch (err) {
      containers?.stop();
      sink?.close();
      obj.close();
      throw err;
    }
  },
};

export function parseSort(text: string): SortKey[] {
  return text
    .split(',')
    .filter(Boolean)
    .map((s) => (s.startsWith('-') ? { field: s.slice(1), desc: true } : { field: s, desc: false }));
}

/** Orders decoded rows by the sort keys (numbers numerically, strings by code point). */
export function compareRows(sort: SortKey[]): (a: Record<string, unknown>, b: Record<string, unknown>) => number {
  return (a, b) => {
    for (const { field, desc } of sort) {
      const x = a[field] as number | string;
      const y = b[field] as number | string;
      if (x === y) continue;
      return (x < y ? -1 : 1) * (desc ? -1 : 1);
    }
    return 0;
  };
}

/**
 * What the codec of an interval gadget decodes: its key and value structs
 * side by side (as if one struct), and its fields but the interval ones,
 * which the session adds.
 */
export function rowShape(def: IntervalGadget, btf: Btf): { layout: BtfStruct; def: IntervalGadget } {
  const agg = def.interval;
  const key = btf.struct(agg.key);
  const value = btf.struct(agg.value);
  const layout: BtfStruct = {
    name: `${agg.key}+${agg.value}`,
    size: key.size + value.size,
    members: [...key.members, ...value.members.map((m) => ({ ...m, offset: m.offset + key.size }))],
  };
  return { layout, def: { ...def, fields: def.fields.filter((f) => !INTERVAL_FIELD_NAMES.has(f.name)) } };
}

/**
 * Map entries → rows: each entry's key and value are copied side by side
 * into one buffer, decoded by the codec generated for the key and value
 * layouts together (as if one struct), and kept per key for totals.
 */
class RowReader {
  private readonly keySize: number;
  private readonly rowSize: number;
  private rows: Buffer;
  private codec: Codec;
  private readonly counters: { offset: number; size: number }[];
  /** key bytes (latin1) → row bytes with counters added up over the step */
  readonly totals = new Map<string, Buffer>();
  /** where the key holds the pid (u32): how the canary's entries are known */
  readonly pidOffset?: number;
  /** the canary's process while it runs: its entries are not rows */
  skipPid = 0;
  /** an interval read took (and left out) some of the canary's entries */
  skipped = false;

  constructor(def: IntervalGadget, obj: BpfObject, private readonly map: KernelMap) {
    const agg = def.interval;
    if (map.perCpu) throw new Error(`${def.id}: map ${agg.map} is per-CPU; interval rows read plain hash maps`);
    const key = obj.btf.struct(agg.key);
    const value = obj.btf.struct(agg.value);
    this.keySize = key.size;
    const pid = key.members.find((m) => m.name === 'pid' && m.type.size === 4);
    if (pid) this.pidOffset = pid.offset;
    if (map.info.keySize !== key.size || map.info.valueSize !== value.size) {
      throw new Error(`${def.id}: map ${agg.map} holds ${map.info.keySize}+${map.info.valueSize}-byte entries, struct ${agg.key}+${agg.value} are ${key.size}+${value.size}`);
    }
    const { layout, def: rowDef } = rowShape(def, obj.btf);
    this.rowSize = layout.size;
    this.counters = value.members.filter((m) => m.type.kind === 'int').map((m) => ({ offset: key.size + m.offset, size: m.type.size }));
    this.rows = Buffer.alloc(this.rowSize * map.info.maxEntries);
    this.codec = buildCodec(rowDef, layout, { buf: this.rows, dv: new DataView(this.rows.buffer, this.rows.byteOffset, this.rows.byteLength) }, [], { bootToWallNs: 0n });
  }

  /** Read and clear the map; every entry decoded (filtered later), its counters added to the totals when asked. */
  read(keepTotals: boolean): Record<string, unknown>[] {
    const { count, keys, values } = this.map.drain();
    const out: Record<string, unknown>[] = [];
    const vs = this.map.valueStride;
    for (let i = 0; i < count; i++) {
      const r = i * this.rowSize;
      if (this.skipPid !== 0 && keys.readUInt32LE(i * this.keySize + this.pidOffset!) === this.skipPid) {
        this.skipped = true;
        continue;
      }
      keys.copy(this.rows, r, i * this.keySize, (i + 1) * this.keySize);
      values.copy(this.rows, r + this.keySize, i * vs, (i + 1) * vs);
      if (keepTotals) this.addToTotals(r);
      const e = this.codec.decode(r, this.rowSize);
      if (e) out.push(e);
    }
    return out;
  }

  /** The totals as rows. */
  readTotals(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const row of this.totals.values()) {
      row.copy(this.rows, 0);
      const e = this.codec.decode(0, this.rowSize);
      if (e) out.push(e);
    }
    return out;
  }

  private addToTotals(r: number): void {
    const id = this.rows.toString('latin1', r, r + this.keySize);
    const sum = this.totals.get(id);
    const row = this.rows.subarray(r, r + this.rowSize);
    if (!sum) {
      this.totals.set(id, Buffer.from(row));
      return;
    }
    // counters add up; names and other members come from the latest interval
    const before = this.counters.map(({ offset, size }) => readUint(sum, offset, size));
    row.copy(sum);
    this.counters.forEach(({ offset, size }, j) => writeUint(sum, offset, size, before[j] + readUint(sum, offset, size)));
  }
}

/** What the max_rows cut left out, in words; undefined when it cut nothing. */
export function cutWarning(cut: { rows: number; intervals: number; totals: number }, intervals: number, o: Pick<IntervalOptions, 'maxRows' | 'sort'>): string | undefined {
  if (!cut.rows && !cut.totals) return undefined;
  const sort = o.sort.map((s) => `${s.desc ? '-' : ''}${s.field}`).join(',');
  const where = [
    cut.rows ? `${cut.rows} rows in ${cut.intervals} of ${intervals} intervals` : '',
    cut.totals ? `${cut.totals} rows of the totals` : '',
  ].filter(Boolean).join(' and ');
  return `max_rows (${o.maxRows}) cut ${where}: the rows past the first ${o.maxRows} by sort (${sort}) were not written, so their counts are in no output; raise max_rows, narrow the filter or change sort`;
}

function readUint(b: Buffer, offset: number, size: number): bigint {
  return size === 8 ? b.readBigUInt64LE(offset) : BigInt(b.readUIntLE(offset, size));
}

function writeUint(b: Buffer, offset: number, size: number, v: bigint): void {
  if (size === 8) b.writeBigUInt64LE(BigInt.asUintN(64, v), offset);
  else b.writeUIntLE(Number(BigInt.asUintN(size * 8, v)), offset, size);
}

/**
 * The canary's side of an interval step: its entries in the map (keys with its pid) are the
 * proof; they are deleted, never read as rows.
 */
function canaryOf(gate: CanaryGate, map: KernelMap, rows: RowReader, closed: () => boolean): CanaryProbe {
  const sweep = () => {
    for (const key of map.keyList()) {
      if (key.readUInt32LE(rows.pidOffset!) !== gate.tgid) continue;
      gate.seen = true;
      map.delete(key);
    }
    if (rows.skipped) gate.seen = true;
  };
  return {
    // an interval read while the canary runs leaves its entries out
    arm: (tgid) => (gate.arm(tgid), (rows.skipPid = tgid), (rows.skipped = false)),
    check: () => (sweep(), gate.seen),
    release: () => gate.release(),
    disarm: () => {
      if (!closed()) sweep();
      gate.disarm();
      rows.skipPid = 0;
    },
  };
}

class IntervalSession implements StepSession {
  canary?: CanaryProbe;
  readonly finished = new Promise<void>(() => {});
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private stepStart = new Date();
  private intervalStart = new Date();
  private events = 0;
  /** rows that passed the filter but fell past max_rows, and the intervals (or totals) that cut any */
  private cut = { rows: 0, intervals: 0, totals: 0 };
  private readonly order: ReturnType<typeof compareRows>;
  /** writes lines[offset] through the sink, so its byte limit and truncation count apply; a live sink takes rows[offset] */
  private readonly lines: string[] = [];
  private readonly top: Record<string, unknown>[] = [];
  private readonly lineCodec: Codec;

  constructor(
    private readonly obj: BpfObject,
    private readonly map: KernelMap,
    private readonly rows: RowReader,
    private readonly test: (e: Record<string, unknown>) => boolean,
    private readonly sink: EventSink,
    private readonly o: IntervalOptions,
    private readonly warnings: string[],
    private readonly containers?: ContainerTracker,
  ) {
    this.order = compareRows(o.sort);
    const lines = this.lines;
    const top = this.top;
    this.lineCodec = {
      write(i, _n, w) {
        w.used += w.chunk.write(lines[i], w.used);
        w.chunk[w.used++] = 10;
        return true;
      },
      encode: (i) => lines[i],
      decode: (i) => top[i],
      maxLineBytes: 0,
    };
  }

  get attached(): number {
    return this.obj.attachedCount;
  }

  start(): void {
    this.stepStart = this.intervalStart = new Date();
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
  }

  private tick(): void {
    const end = new Date();
    this.seq++;
    this.emit(this.rows.read(this.o.totals), this.seq, this.intervalStart, end);
    this.intervalStart = end;
  }

  private emit(rows: Record<string, unknown>[], interval: number, start: Date, end: Date): void {
    const times = { interval, interval_start: start.toISOString(), interval_end: end.toISOString() };
    const kept = rows
      .map((r) => Object.assign(r, times))
      .filter(this.test)
      .sort(this.order);
    const top = kept.slice(0, this.o.maxRows);
    if (kept.length > top.length) {
      if (interval === 0) this.cut.totals = kept.length - top.length;
      else {
        this.cut.rows += kept.length - top.length;
        this.cut.intervals++;
      }
    }
    this.lines.length = 0;
    this.top.length = 0;
    for (const r of top) this.lines.push(JSON.stringify(r)), this.top.push(r);
    this.lineCodec.maxLineBytes = Math.max(0, ...this.lines.map((l) => Buffer.byteLength(l) + 1));
    for (let i = 0; i < this.lines.length; i++) if (this.sink.append(this.lineCodec, i, 0)) this.events++;
    this.sink.flush();
  }

  stopped = false;

  async stop(): Promise<StepOutcome> {
    this.stopped = true;
    clearInterval(this.timer);
    try {
      this.obj.detach();
      // the last, partial interval
      this.tick();
      if (this.o.totals) this.emit(this.rows.readTotals(), 0, this.stepStart, new Date());
      const lost = this.obj.readGlobal('gadget_lost');
      const warnings = [...this.warnings];
      if (lost) warnings.push(`${lost} updates found the map ${this.map.info.name} full (${this.map.info.maxEntries} keys): those counts are missing; read more often (a shorter interval) or narrow the filter`);
      const cut = cutWarning(this.cut, this.seq, this.o);
      if (cut) warnings.push(cut);
      const containers = this.containers?.stop();
      return { events: this.events, lost, truncated: this.sink.truncated, warnings, ...(containers ? { containers } : {}) };
    } finally {
      closeAll(() => this.sink.close(), () => this.containers?.stop(), () => this.obj.close());
    }
  }
}
