/**
 * Generated per-layout codecs. From the event struct's BTF layout and the
 * gadget's field specs, buildCodec generates (once per step):
 * - `write`: reads a record in place, applies the user-space filter and writes
 *   the event's NDJSON line as bytes straight into the sink's buffer: integers
 *   as digits, strings copied byte by byte from the ring (JSON.stringify only
 *   for the rare string that needs escaping or is not ASCII). No string, no
 *   object and no JSONata per event: this is the hot path.
 * - `decode`: the same event as an object (filters' view, tests).
 * - `encode`: `write` into a scratch buffer, as a string (snapshots, tests).
 *
 * Each decode kind is one entry of KINDS: how a field of that kind is read
 * (to a JS value), how it is written (bytes) and the most bytes it writes.
 * A field is written the same way whether or not the filter needed its
 * value, so `maxLineBytes`, the sum of the worst cases, holds for every line.
 */
import type { BtfMember, BtfStruct, BtfValueType } from '../ebpf/btf.ts';
import { compileFilter } from './filter.ts';
import { ipv6ZeroRun } from './packet/ip.ts';
import { flagNames, flagNamesMaxLength } from './names/index.ts';
import type { ByteWriter, Codec, DecodeKind, FieldSpec, FieldType, GadgetDefinition, Predicate } from './types.ts';

// the shape a codec has is the engine's vocabulary (types.ts); its generator is here
export type { ByteWriter, Codec } from './types.ts';

/** Maps CLOCK_BOOTTIME ns (as the kernel stamps events) to wall-clock time. */
export interface Clock {
  /** wall-clock ns minus boot-time ns */
  bootToWallNs: bigint;
}

/** JSON escaping turns a byte into at most 6 (\u00XX); invalid UTF-8 into 3 (U+FFFD). */
const WORST_BYTES_PER_BYTE = 6;
/** the longest JSON number text: -1.7976931348623157e+308 */
const WORST_NUMBER_BYTES = 24;
/** "2023-11-14T22:13:25.123456789Z" with quotes, and one more for years past 9999 */
const TIMESTAMP_BYTES = 33;
/** "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" with quotes */
const IPADDR_BYTES = 41;

/** One field as the code generator sees it. */
interface FieldCtx {
  f: FieldSpec;
  /** `${gadget}: field ${name}`, for errors */
  where: string;
  /** the struct member (every kind but derive) */
  m: BtfMember;
  /** JS expression of the member's offset in the record */
  at: string;
  /** another struct member, by name (length, family) */
  other(name: string | undefined, what: string): BtfMember;
  /** a JS identifier bound to `value` in the generated code */
  constant(value: unknown): string;
  /** the local holding a field's decoded value */
  local(name: string): string;
  /** the FieldType of another field */
  fieldType(name: string): FieldType | undefined;
}

interface Kind {
  /** the FieldType the kind produces; undefined: the spec's (derive) */
  type?: FieldType;
  /** throws when the member (or spec) cannot be this kind */
  check(c: FieldCtx): void;
  /** JS expression of the decoded value */
  read(c: FieldCtx): string;
  /** JS statement(s) appending the JSON value at `p`; `value` is the local holding read() when decoded */
  write(c: FieldCtx, value: string | undefined): string;
  /** most bytes write() appends */
  worst(c: FieldCtx): number;
}

const isInt = (t: BtfValueType) => t.kind === 'int';
const isChars = (t: BtfValueType) => t.kind === 'array' && t.elem.kind === 'int' && t.elem.size === 1;
const needInt = (c: FieldCtx, size?: number) => {
  if (!isInt(c.m.type) || (size && c.m.type.size !== size)) {
    throw new Error(`${c.where}: ${c.f.decode ?? 'a number'} needs ${size ? `a ${size * 8}-bit` : 'an'} integer member, ${c.m.name} is ${describe(c.m.type)}`);
  }
};
const needNames = (c: FieldCtx) => {
  if (!c.f.names) throw new Error(`${c.where}: decode ${c.f.decode} needs a names table`);
};
const needChars = (c: FieldCtx) => {
  if (!isChars(c.m.type)) throw new Error(`${c.where}: ${c.f.decode ?? 'a string'} needs a char array member, ${c.m.name} is ${describe(c.m.type)}`);
};
const readM = (c: FieldCtx) => readInt(c.m.type, c.at);
const nelems = (t: BtfValueType) => (t.kind === 'array' ? t.nelems : 0);
const lengthOf = (c: FieldCtx) => {
  const len = c.other(c.f.length, 'length');
  return `Math.min(${readInt(len.type, `o + ${len.offset}`)}, ${c.m.type.size}, n - ${c.m.offset})`;
};
const familyOf = (c: FieldCtx) => {
  const fam = c.other(c.f.family, 'family');
  return readInt(fam.type, `o + ${fam.offset}`);
};
/** JSON text bytes of each name, for writers that copy them */
const quotedNames = (names: Readonly<Record<number, string>>) =>
  new Map(Object.entries(names).map(([k, v]) => [Number(k), Buffer.from(JSON.stringify(v), 'utf8')]));

/** The kind table. */
const KINDS: Record<DecodeKind, Kind> = {
  int: {
    type: 'number',
    check: (c) => needInt(c),
    read: readM,
    write: (c, v) => `p = wint(out, p, ${v ?? readM(c)});`,
    worst: (c) => intBytes(c.m.type),
  },
  cstring: {
    type: 'string',
    check: needChars,
    read: (c) => `cstr(${c.at}, ${nelems(c.m.type)})`,
    // from the bytes even when decoded: the copy loop is faster than stringify
    write: (c) => `p = wstr(out, p, ${c.at}, ${nelems(c.m.type)});`,
    worst: (c) => 2 + WORST_BYTES_PER_BYTE * c.m.type.size,
  },
  timestamp: {
    type: 'string',
    check: (c) => needInt(c, 8),
    read: (c) => `ts(${c.at})`,
    write: (c) => `p = wts(out, p, ${c.at});`,
    worst: () => TIMESTAMP_BYTES,
  },
  cstrings: {
    type: 'string[]',
    check: (c) => {
      needChars(c);
      if (!isInt(c.other(c.f.length, 'length').type)) throw new Error(`${c.where}: length member ${c.f.length} is not an integer`);
    },
    read: (c) => `cstrs(${c.at}, ${lengthOf(c)})`,
    write: (c) => `p = wstrs(out, p, ${c.at}, ${lengthOf(c)});`,
    worst: (c) => 2 + WORST_BYTES_PER_BYTE * c.m.type.size,
  },
  bool: {
    type: 'boolean',
    check: (c) => needInt(c),
    read: (c) => `${readM(c)} !== 0`,
    write: (c, v) => `p = wbool(out, p, ${v ?? `${readM(c)} !== 0`});`,
    worst: () => 5,
  },
  ipaddr: {
    type: 'string',
    check: (c) => {
      const t = c.m.type;
      if (t.kind !== 'array' || t.size !== 16 || t.elem.kind !== 'int') throw new Error(`${c.where}: ipaddr needs a 16-byte array (u8[16] or __u32[4]), ${c.m.name} is ${describe(t)}`);
      if (!isInt(c.other(c.f.family, 'family').type)) throw new Error(`${c.where}: family member ${c.f.family} is not an integer`);
    },
    read: (c) => `ipstr(${c.at}, ${familyOf(c)})`,
    write: (c) => `p = wip(out, p, ${c.at}, ${familyOf(c)});`,
    worst: () => IPADDR_BYTES,
  },
  port: {
    type: 'number',
    check: (c) => needInt(c, 2),
    read: (c) => `dv.getUint16(${c.at}, false)`,
    write: (c, v) => `p = wint(out, p, ${v ?? `dv.getUint16(${c.at}, false)`});`,
    worst: () => 5,
  },
  enum: {
    type: 'string',
    check: (c) => {
      needInt(c);
      needNames(c);
    },
    read: (c) => `enumstr(${c.constant(c.f.names)}, ${readM(c)})`,
    write: (c) => `p = wenum(out, p, ${c.constant(quotedNames(c.f.names!))}, ${readM(c)});`,
    worst: (c) => Math.max(2 + intBytes(c.m.type), ...[...quotedNames(c.f.names!).values()].map((b) => b.length)),
  },
  flags: {
    type: 'string',
    check: (c) => {
      needInt(c);
      needNames(c);
      if (c.m.type.size > 4) throw new Error(`${c.where}: flags are read from at most 32 bits, ${c.m.name} has ${c.m.type.size * 8}`);
      const notBit = Object.keys(c.f.names!).map(Number).find((v) => v !== 0 && (v & (v - 1)) !== 0);
      if (notBit !== undefined) throw new Error(`${c.where}: flags names single bits; ${c.f.names![notBit]} is 0x${notBit.toString(16)} (use a derive for masks and modes)`);
    },
    read: (c) => `flagstr(${c.constant(c.f.names)}, ${readM(c)})`,
    write: (c) => `p = wflags(out, p, ${c.constant(c.f.names)}, ${readM(c)});`,
    worst: (c) => 2 + WORST_BYTES_PER_BYTE * flagNamesMaxLength(c.f.names!, c.m.type.size * 8),
  },
  u64str: {
    type: 'string',
    check: (c) => needInt(c, 8),
    read: (c) => `dv.getBigUint64(${c.at}, true).toString()`,
    write: (c) => `p = wu64str(out, p, ${c.at});`,
    worst: () => 22,
  },
  derive: {
    check: (c) => {
      const d = c.f.derive;
      if (!d) throw new Error(`${c.where}: decode derive needs derive: { from, fn }`);
      if ((c.f.type === 'string' || c.f.type === 'string[]') && !(Number.isInteger(d.maxBytes) && d.maxBytes! > 0)) {
        throw new Error(`${c.where}: a ${c.f.type} derive needs derive.maxBytes (the most bytes of its JSON text)`);
      }
    },
    read: (c) => `${c.constant(c.f.derive!.fn)}(${c.f.derive!.from.map(c.local).join(', ')})`,
    write: (c, v) => {
      const d = c.f.derive!;
      const value = v ?? KINDS.derive.read(c);
      switch (c.f.type) {
        case 'number': return `p = wnum(out, p, ${value});`;
        case 'boolean': return `p = wbool(out, p, ${value});`;
        default:
          // names of one number (errno, flag words) repeat: their bytes are kept, not rebuilt per event
          if (v === undefined && d.from.length === 1 && c.fieldType(d.from[0]) === 'number') {
            return `p = wmemo(out, p, ${c.constant(new Memo())}, ${c.constant(d.fn)}, ${c.local(d.from[0])}, ${d.maxBytes}, ${JSON.stringify(c.where)});`;
          }
          return `p = wjson(out, p, ${value}, ${d.maxBytes}, ${JSON.stringify(c.where)});`;
      }
    },
    worst: (c) => (c.f.type === 'number' ? WORST_NUMBER_BYTES : c.f.type === 'boolean' ? 5 : c.f.derive!.maxBytes!),
  },
};

/** The kind a field decodes with: its `decode`, or its member's default. */
export function kindOf(f: FieldSpec, member: BtfMember | undefined): DecodeKind {
  if (f.decode) return f.decode;
  if (member && isInt(member.type)) return 'int';
  if (member && isChars(member.type)) return 'cstring';
  return 'int'; // check() names the member type that does not fit
}

export function buildCodec(
  def: GadgetDefinition,
  layout: BtfStruct,
  view: { buf: Buffer; dv: DataView },
  filter: Predicate[],
  clock: Clock,
): Codec {
  const members = new Map(layout.members.map((m) => [m.name, m]));
  const local = (name: string) => `f_${name}`;
  const constants: unknown[] = [];
  const constant = (value: unknown) => {
    let i = constants.indexOf(value);
    if (i < 0) i = constants.push(value) - 1;
    return `K${i}`;
  };

  // each field's context and kind, checked up front so a bad spec fails at open, naming the field
  const declared = new Set<string>();
  const plan = def.fields.map((f) => {
    const where = `${def.id}: field ${f.name}`;
    if (declared.has(f.name)) throw new Error(`${where}: declared twice`);
    const m = f.decode === 'derive' ? undefined : members.get(f.member ?? f.name);
    if (f.decode !== 'derive' && !m) throw new Error(`${where}: struct ${layout.name} has no member ${f.member ?? f.name}`);
    if (f.decode === 'derive') {
      const unknown = (f.derive?.from ?? []).find((d) => !declared.has(d));
      if (unknown) throw new Error(`${where}: derives from "${unknown}", which is not a field declared before it`);
    }
    declared.add(f.name);
    const kind = kindOf(f, m);
    const c: FieldCtx = {
      f, where, m: m!, at: m ? `o + ${m.offset}` : '', constant, local,
      fieldType: (name) => def.fields.find((x) => x.name === name)?.type,
      other(name, what) {
        const o = name === undefined ? undefined : members.get(name);
        if (!o) throw new Error(`${where}: ${what} member ${name === undefined ? '(not given)' : `"${name}"`} is not in struct ${layout.name}`);
        return o;
      },
    };
    const k = KINDS[kind];
    if (!k) throw new Error(`${where}: unknown decode "${kind}" (known: ${Object.keys(KINDS).join(', ')})`);
    k.check(c);
    if (k.type && k.type !== f.type) throw new Error(`${where}: decode ${kind} gives a ${k.type}, the field says ${f.type}`);
    return { f, c, k };
  });

  // the fields write() must decode first: those the filter reads, derived ones, and what they derive from
  // (a derived field the filter does not read is computed where it is written)
  const needed = new Set<string>(filter.map((p) => p.field));
  for (const f of def.fields) f.derive?.from.forEach((d) => needed.add(d));
  for (const f of [...def.fields].reverse()) if (needed.has(f.name)) f.derive?.from.forEach((d) => needed.add(d));
  const { source: test, regexes } = compileFilter(filter, def.fields, local);
  const decodeLine = ({ f, c, k }: (typeof plan)[number]) => `const ${local(f.name)} = ${k.read(c)};`;

  const writeLines: string[] = plan.filter(({ f }) => needed.has(f.name)).map(decodeLine);
  writeLines.push(`if (!(${test})) return false;`, 'const out = w.chunk;', 'let p = w.used;');
  let maxLineBytes = 2; // } and the newline
  plan.forEach(({ f, c, k }, i) => {
    const key = Buffer.from(`${i ? ',' : '{'}${JSON.stringify(f.name)}:`, 'utf8');
    writeLines.push(`${[...key].map((b, j) => `out[p + ${j}] = ${b};`).join(' ')} p += ${key.length};`);
    writeLines.push(k.write(c, needed.has(f.name) ? local(f.name) : undefined));
    maxLineBytes += key.length + k.worst(c);
  });
  writeLines.push('out[p] = 125; out[p + 1] = 10;', 'w.used = p + 2;', 'return true;');

  const decodeSrc = `return function (o, n) {\n  ${plan.map(decodeLine).join('\n  ')}\n  if (!(${test})) return undefined;\n  return { ${def.fields.map((f) => `${JSON.stringify(f.name)}: ${local(f.name)}`).join(', ')} };\n};`;
  const writeSrc = `return function (o, n, w) {\n  ${writeLines.join('\n  ')}\n};`;

  const h = makeHelpers(view.buf, clock);
  const names = ['buf', 'dv', 'R', ...Object.keys(h), ...constants.map((_, i) => `K${i}`)];
  const args = [view.buf, view.dv, regexes, ...Object.values(h), ...constants];
  const make = (src: string) => new Function(...names, src)(...args);
  const write = make(writeSrc) as Codec['write'];
  const scratch: ByteWriter = { chunk: Buffer.alloc(maxLineBytes), used: 0 };
  return {
    write,
    decode: make(decodeSrc),
    encode(offset, length) {
      scratch.used = 0;
      return write(offset, length, scratch) ? scratch.chunk.toString('utf8', 0, scratch.used - 1) : undefined;
    },
    maxLineBytes,
  };
}

function describe(t: BtfValueType): string {
  return t.kind === 'int' ? `a ${t.size * 8}-bit integer` : t.kind === 'array' ? `an array of ${t.nelems}` : `a ${t.kind}`;
}

/** digits (and sign) of the widest value of an integer member */
function intBytes(t: BtfValueType): number {
  if (t.kind !== 'int') return WORST_NUMBER_BYTES;
  const max = t.signed ? -(2n ** BigInt(t.size * 8 - 1)) : 2n ** BigInt(t.size * 8) - 1n;
  // a u64 above 2^53 is a JS number: its text is the same length as the exact one, or shorter
  return String(max).length;
}

function readInt(t: BtfValueType, at: string): string {
  if (t.kind !== 'int') throw new Error(`expected an integer member, found ${t.kind}`);
  switch (t.size) {
    case 1: return t.signed ? `dv.getInt8(${at})` : `dv.getUint8(${at})`;
    case 2: return t.signed ? `dv.getInt16(${at}, true)` : `dv.getUint16(${at}, true)`;
    case 4: return t.signed ? `dv.getInt32(${at}, true)` : `dv.getUint32(${at}, true)`;
    case 8: return t.signed ? `Number(dv.getBigInt64(${at}, true))` : `u64(${at})`;
    default: throw new Error(`unsupported integer size ${t.size}`);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

/** decimal digits of a non-negative int32 */
function width(v: number): number {
  return v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5 : v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
}

/** write the non-negative int32 `v` as exactly `n` digits (zero-padded), int32 arithmetic only */
function digits(out: Buffer, p: number, v: number, n: number): number {
  for (let i = p + n - 1; i >= p; i--) {
    const q = (v / 10) | 0;
    out[i] = 48 + v - q * 10;
    v = q;
  }
  return p + n;
}

/** a JS number as JSON digits: int32 arithmetic for the common case, no string */
function writeInt(out: Buffer, p: number, v: number): number {
  if (v < 0) {
    out[p++] = 0x2d;
    v = -v;
  }
  if (v <= 0x7fffffff) return digits(out, p, v | 0, width(v | 0));
  if (!Number.isSafeInteger(v)) return p + out.write(String(v), p, 'latin1');
  // above int32: the high part, then nine digits of the low part
  const high = Math.floor(v / 1e9);
  p = high <= 0x7fffffff ? digits(out, p, high | 0, width(high | 0)) : p + out.write(String(high), p, 'latin1');
  return digits(out, p, (v - high * 1e9) | 0, 9);
}

/** A derived value's JSON bytes, held to the size its derive declared. */
function jsonBytes(v: unknown, max: number, where: string): Buffer {
  const b = Buffer.from(JSON.stringify(v), 'utf8');
  if (b.length > max) throw new Error(`${where}: derived value is ${b.length} bytes of JSON, more than its derive.maxBytes ${max}`);
  return b;
}

/**
 * A string derived from one number (a flag word, an errno): its JSON bytes in
 * a direct-mapped table, as the same few values repeat (a slot holds the last
 * value that hashed to it). Cheaper per event than a Map or rebuilding the text.
 */
const MEMO_MASK = 1023;
class Memo {
  readonly keys = new Float64Array(MEMO_MASK + 1);
  readonly values: (Buffer | undefined)[] = new Array(MEMO_MASK + 1).fill(undefined);
}

const AF_INET = 2;
const AF_INET6 = 10;

function makeHelpers(buf: Buffer, clock: Clock) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const offset = clock.bootToWallNs;
  const offsetSec = Number(offset / 1_000_000_000n);
  const offsetNs = Number(offset % 1_000_000_000n);
  let cachedSecond = -1;
  let cachedPrefix = '';
  let cachedPrefixBytes = Buffer.alloc(0);

  /**
   * Wall-clock seconds and ns of a CLOCK_BOOTTIME stamp, with exact integer
   * arithmetic below 2^53 at every step (BigInt costs more per event): boot ns
   * = hi * 2^32 + lo, and 2^32 ns = 4 s + 294967296 ns, whose product with hi
   * is split once more into µs and ns.
   */
  const wall = { sec: 0, ns: 0 };
  const toWall = (at: number) => {
    const lo = dv.getUint32(at, true);
    const hi = dv.getUint32(at + 4, true);
    const us = hi * 294967;
    let sec = hi * 4 + Math.floor(us / 1e6) + offsetSec;
    let ns = (us % 1e6) * 1000 + hi * 296 + lo + offsetNs;
    sec += Math.floor(ns / 1e9);
    ns %= 1e9;
    wall.sec = sec;
    wall.ns = ns;
    if (sec !== cachedSecond) {
      cachedSecond = sec;
      cachedPrefix = new Date(sec * 1000).toISOString().slice(0, 19) + '.';
      cachedPrefixBytes = Buffer.from(`"${cachedPrefix}`, 'latin1');
    }
  };

  const cstr = (start: number, max: number): string => {
    let end = start;
    const limit = start + max;
    if (max > 64) {
      end = buf.indexOf(0, start);
      if (end < 0 || end > limit) end = limit;
    } else {
      while (end < limit && buf[end] !== 0) end++;
    }
    return buf.toString('utf8', start, end);
  };

  const cstrs = (start: number, length: number): string[] => {
    if (length <= 0) return [];
    const list = buf.toString('utf8', start, start + length).split('\u0000');
    if (list[list.length - 1] === '') list.pop();
    return list;
  };

  /** the 16-bit groups of an IPv6 address at `at`, big-endian */
  const groups = new Uint16Array(8);
  const readGroups = (at: number) => {
    for (let i = 0; i < 8; i++) groups[i] = (buf[at + 2 * i] << 8) | buf[at + 2 * i + 1];
  };
  const isV4Mapped = () => groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
  const HEX = Buffer.from('0123456789abcdef');
  /** the address as ASCII bytes at p (no quotes) */
  const ipBytes = (out: Buffer | Uint8Array, p: number, at: number, family: number): number => {
    const v4 = (q: number, a: number) => {
      for (let i = 0; i < 4; i++) {
        if (i) out[q++] = 0x2e; // .
        const b = buf[a + i];
        q = digits(out as Buffer, q, b, b < 10 ? 1 : b < 100 ? 2 : 3);
      }
      return q;
    };
    if (family === AF_INET) return v4(p, at);
    if (family !== AF_INET6) return p;
    readGroups(at);
    if (isV4Mapped()) {
      for (const c of Buffer.from('::ffff:')) out[p++] = c;
      return v4(p, at + 12);
    }
    const [run, len] = ipv6ZeroRun(groups);
    for (let i = 0; i < 8; i++) {
      if (i === run) {
        out[p++] = 0x3a;
        if (i === 0) out[p++] = 0x3a;
        i += len - 1;
        if (i === 7) break;
        continue;
      }
      const g = groups[i];
      let started = false;
      for (let shift = 12; shift >= 0; shift -= 4) {
        const d = (g >> shift) & 15;
        if (d || started || shift === 0) {
          out[p++] = HEX[d];
          started = true;
        }
      }
      if (i < 7) out[p++] = 0x3a;
    }
    return p;
  };
  const ipScratch = Buffer.alloc(IPADDR_BYTES);
  const asciiNumber = (out: Buffer, p: number, v: number) => {
    out[p++] = QUOTE;
    p = writeInt(out, p, v);
    out[p] = QUOTE;
    return p + 1;
  };
  const copy = (out: Buffer, p: number, src: Buffer) => {
    for (let i = 0; i < src.length; i++) out[p++] = src[i];
    return p;
  };

  return {
    u64: (at: number) => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 4294967296,
    cstr,
    cstrs,
    /** RFC 3339 with nanoseconds; the ISO prefix is cached per second */
    ts(at: number): string {
      toWall(at);
      return cachedPrefix + String(wall.ns).padStart(9, '0') + 'Z';
    },
    wts(out: Buffer, p: number, at: number): number {
      toWall(at);
      for (let i = 0; i < cachedPrefixBytes.length; i++) out[p++] = cachedPrefixBytes[i];
      p = digits(out, p, wall.ns | 0, 9);
      out[p] = 0x5a; // Z
      out[p + 1] = QUOTE;
      return p + 2;
    },
    wint: writeInt,
    wnum(out: Buffer, p: number, v: number): number {
      return Number.isSafeInteger(v) ? writeInt(out, p, v) : p + out.write(JSON.stringify(v), p, 'latin1');
    },
    /** a derived string or list: its JSON text, which must fit the bytes the derive declared */
    wjson(out: Buffer, p: number, v: unknown, max: number, where: string): number {
      return copy(out, p, jsonBytes(v, max, where));
    },
    wmemo(out: Buffer, p: number, memo: Memo, fn: (v: unknown) => unknown, from: number, max: number, where: string): number {
      const slot = (from ^ (from >>> 11)) & MEMO_MASK;
      let b = memo.values[slot];
      if (b === undefined || memo.keys[slot] !== from) {
        b = jsonBytes(fn(from), max, where);
        memo.keys[slot] = from;
        memo.values[slot] = b;
      }
      out.set(b, p); // a builtin memcpy: cheaper than a byte loop past a dozen bytes
      return p + b.length;
    },
    ipstr(at: number, family: number): string {
      return ipScratch.toString('latin1', 0, ipBytes(ipScratch, 0, at, family));
    },
    wip(out: Buffer, p: number, at: number, family: number): number {
      out[p++] = QUOTE;
      p = ipBytes(out, p, at, family);
      out[p] = QUOTE;
      return p + 1;
    },
    enumstr: (names: Readonly<Record<number, string>>, v: number): string => names[v] ?? String(v),
    wenum(out: Buffer, p: number, names: Map<number, Buffer>, v: number): number {
      const b = names.get(v);
      return b ? copy(out, p, b) : asciiNumber(out, p, v);
    },
    flagstr: (names: Readonly<Record<number, string>>, v: number): string => flagNames(v, names),
    wflags(out: Buffer, p: number, names: Readonly<Record<number, string>>, v: number): number {
      return p + out.write(JSON.stringify(flagNames(v, names)), p);
    },
    wu64str(out: Buffer, p: number, at: number): number {
      const text = dv.getBigUint64(at, true).toString();
      out[p++] = QUOTE;
      p += out.write(text, p, 'latin1');
      out[p] = QUOTE;
      return p + 1;
    },
    wbool(out: Buffer, p: number, v: boolean): number {
      const src = v ? TRUE : FALSE;
      for (let i = 0; i < src.length; i++) out[p++] = src[i];
      return p;
    },
    /** a NUL-terminated char array as a JSON string; plain ASCII is copied as is */
    wstr(out: Buffer, p: number, start: number, max: number): number {
      const p0 = p;
      out[p++] = QUOTE;
      for (let i = start, end = start + max; i < end; i++) {
        const b = buf[i];
        if (b === 0) break;
        if (b < 0x20 || b === QUOTE || b === BACKSLASH || b >= 0x80) return p0 + out.write(JSON.stringify(cstr(start, max)), p0);
        out[p++] = b;
      }
      out[p] = QUOTE;
      return p + 1;
    },
    /** NUL-separated strings (argv) as a JSON array of strings */
    wstrs(out: Buffer, p: number, start: number, length: number): number {
      const p0 = p;
      out[p++] = 0x5b; // [
      if (length > 0) {
        out[p++] = QUOTE;
        for (let i = start, end = start + length; i < end; i++) {
          const b = buf[i];
          if (b === 0) {
            if (i === end - 1) break; // the last argument's terminator
            out[p++] = QUOTE;
            out[p++] = 0x2c;
            out[p++] = QUOTE;
          } else if (b < 0x20 || b === QUOTE || b === BACKSLASH || b >= 0x80) {
            return p0 + out.write(JSON.stringify(cstrs(start, length)), p0);
          } else {
            out[p++] = b;
          }
        }
        out[p++] = QUOTE;
      }
      out[p] = 0x5d; // ]
      return p + 1;
    },
  };
}
