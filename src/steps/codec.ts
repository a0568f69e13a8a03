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
 */
import type { BtfMember, BtfStruct, BtfValueType } from '../ebpf/btf.ts';
import { compileFilter, type Predicate } from '../runner/filter.ts';
import { fieldTypes, type FieldSpec, type GadgetDefinition } from './types.ts';

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

/** Maps CLOCK_BOOTTIME ns (as the kernel stamps events) to wall-clock time. */
export interface Clock {
  /** wall-clock ns minus boot-time ns */
  bootToWallNs: bigint;
}

/** JSON escaping turns a byte into at most 6 (\u00XX); invalid UTF-8 into 3 (U+FFFD). */
const WORST_BYTES_PER_BYTE = 6;

export function buildCodec(
  def: GadgetDefinition,
  layout: BtfStruct,
  view: { buf: Buffer; dv: DataView },
  filter: Predicate[],
  clock: Clock,
): Codec {
  const members = new Map(layout.members.map((m) => [m.name, m]));
  const member = (f: FieldSpec): BtfMember => {
    const m = members.get(f.member ?? f.name);
    if (!m) throw new Error(`${def.id}: field ${f.name}: struct ${layout.name} has no member ${f.member ?? f.name}`);
    return m;
  };
  const local = (name: string) => `f_${name}`;
  const deps = (f: FieldSpec) => [...(f.compute ?? '').matchAll(/\bf\.(\w+)/g)].map((m) => m[1]);

  // JavaScript that decodes one field into its local, for filters, computed fields and decode()
  const decodeLine = (f: FieldSpec): string => {
    const l = local(f.name);
    if (f.decode === 'compute') return `const ${l} = ${f.compute!.replace(/\bf\.(\w+)/g, (_, n) => local(n))};`;
    const m = member(f);
    const at = `o + ${m.offset}`;
    switch (f.decode) {
      case 'timestamp':
        if (m.type.kind !== 'int' || m.type.size !== 8) throw new Error(`${def.id}: field ${f.name}: a timestamp is a 64-bit integer`);
        return `const ${l} = ts(${at});`;
      case 'cstrings':
        return `const ${l} = cstrs(${at}, ${lengthOf(f, m)});`;
      case 'bool':
        return `const ${l} = ${readInt(m.type, at)} !== 0;`;
      default:
        return `const ${l} = ${readMember(m.type, at, `${def.id}.${f.name}`)};`;
    }
  };
  const lengthOf = (f: FieldSpec, m: BtfMember): string => {
    const len = members.get(f.length!);
    if (!len) throw new Error(`${def.id}: field ${f.name}: no length member ${f.length}`);
    return `Math.min(${readInt(len.type, `o + ${len.offset}`)}, ${m.type.size}, n - ${m.offset})`;
  };

  // the fields write() must decode first: those the filter reads, computed ones, and what they compute from
  const types = fieldTypes(def);
  const needed = new Set<string>(filter.map((p) => p.field));
  for (const f of def.fields) if (f.decode === 'compute') needed.add(f.name);
  for (const f of [...def.fields].reverse()) if (needed.has(f.name)) deps(f).forEach((d) => needed.add(d));
  const { source: test, regexes } = compileFilter(filter, types, local);

  const writeLines: string[] = def.fields.filter((f) => needed.has(f.name)).map(decodeLine);
  writeLines.push(`if (!(${test})) return false;`, 'const out = w.chunk;', 'let p = w.used;');
  let maxLineBytes = 2;
  def.fields.forEach((f, i) => {
    const key = Buffer.from(`${i ? ',' : '{'}${JSON.stringify(f.name)}:`, 'utf8');
    writeLines.push(`${[...key].map((b, j) => `out[p + ${j}] = ${b};`).join(' ')} p += ${key.length};`);
    maxLineBytes += key.length;
    if (needed.has(f.name)) {
      writeLines.push(f.type === 'boolean' ? `p = wbool(out, p, ${local(f.name)});` : f.type === 'number' ? `p = wint(out, p, ${local(f.name)});` : `p = p + out.write(JSON.stringify(${local(f.name)}), p);`);
      maxLineBytes += 24;
      return;
    }
    const m = member(f);
    const at = `o + ${m.offset}`;
    switch (f.decode) {
      case 'timestamp':
        writeLines.push(`p = wts(out, p, ${at});`);
        maxLineBytes += 33;
        break;
      case 'cstrings':
        writeLines.push(`p = wstrs(out, p, ${at}, ${lengthOf(f, m)});`);
        maxLineBytes += 2 + WORST_BYTES_PER_BYTE * m.type.size;
        break;
      case 'bool':
        writeLines.push(`p = wbool(out, p, ${readInt(m.type, at)} !== 0);`);
        maxLineBytes += 5;
        break;
      default:
        if (m.type.kind === 'int') {
          writeLines.push(`p = wint(out, p, ${readInt(m.type, at)});`);
          maxLineBytes += 21;
        } else {
          readMember(m.type, at, `${def.id}.${f.name}`); // throws for members without a default decoder
          writeLines.push(`p = wstr(out, p, ${at}, ${m.type.size});`);
          maxLineBytes += 2 + WORST_BYTES_PER_BYTE * m.type.size;
        }
    }
  });
  writeLines.push('out[p] = 125; out[p + 1] = 10;', 'w.used = p + 2;', 'return true;');

  const decodeLines = def.fields.map(decodeLine);
  const decodeSrc = `return function (o, n) {\n  ${decodeLines.join('\n  ')}\n  if (!(${test})) return undefined;\n  return { ${def.fields.map((f) => `${JSON.stringify(f.name)}: ${local(f.name)}`).join(', ')} };\n};`;
  const writeSrc = `return function (o, n, w) {\n  ${writeLines.join('\n  ')}\n};`;

  const h = makeHelpers(view.buf, clock);
  const names = ['buf', 'dv', 'R', 'u64', 'cstr', 'cstrs', 'ts', 'wint', 'wbool', 'wstr', 'wstrs', 'wts'] as const;
  const make = (src: string) => new Function(...names, src)(view.buf, view.dv, regexes, h.u64, h.cstr, h.cstrs, h.ts, h.wint, h.wbool, h.wstr, h.wstrs, h.wts);
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

function readMember(t: BtfValueType, at: string, what: string): string {
  if (t.kind === 'int') return readInt(t, at);
  if (t.kind === 'array' && t.elem.kind === 'int' && t.elem.size === 1) return `cstr(${at}, ${t.nelems})`;
  throw new Error(`${what}: no default decoder for a ${t.kind} member; give the field a decode`);
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
    wint(out: Buffer, p: number, v: number): number {
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
