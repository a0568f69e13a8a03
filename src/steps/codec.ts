/**
 * Generated per-layout codecs: from the event struct's BTF layout and the
 * gadget's field specs, one function that reads a record in place, applies
 * the user-space filter and returns the event as an NDJSON line, and one that
 * returns it as an object. Generated once per step, so the hot path is
 * straight-line code with no JSON.stringify or JSONata per event.
 */
import type { BtfStruct, BtfValueType } from '../ebpf/btf.ts';
import { compileFilter, type Predicate } from '../runner/filter.ts';
import { fieldTypes, type GadgetDefinition } from './types.ts';

export type EncodeFn = (offset: number, length: number) => string | undefined;
export type DecodeFn = (offset: number, length: number) => Record<string, unknown> | undefined;

export interface Codec {
  /** NDJSON line (no newline), or undefined when the filter drops the event */
  encode: EncodeFn;
  decode: DecodeFn;
}

/** Maps CLOCK_BOOTTIME ns (as the kernel stamps events) to wall-clock time. */
export interface Clock {
  /** wall-clock ns minus boot-time ns */
  bootToWallNs: bigint;
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
  const lines: string[] = [];
  const parts: string[] = [];

  for (const f of def.fields) {
    const l = local(f.name);
    if (f.decode === 'compute') {
      lines.push(`const ${l} = ${f.compute!.replace(/\bf\.(\w+)/g, (_, n) => local(n))};`);
    } else {
      const m = members.get(f.member ?? f.name);
      if (!m) throw new Error(`${def.id}: field ${f.name}: struct ${layout.name} has no member ${f.member ?? f.name}`);
      const at = `o + ${m.offset}`;
      switch (f.decode) {
        case 'timestamp':
          if (m.type.kind !== 'int' || m.type.size !== 8) throw new Error(`${def.id}: field ${f.name}: a timestamp is a 64-bit integer`);
          lines.push(`const ${l} = ts(${at});`);
          break;
        case 'cstrings': {
          const len = members.get(f.length!);
          if (!len) throw new Error(`${def.id}: field ${f.name}: no length member ${f.length}`);
          lines.push(`const ${l} = cstrs(${at}, Math.min(${readInt(len.type, `o + ${len.offset}`)}, ${m.type.size}, n - ${m.offset}));`);
          break;
        }
        case 'bool':
          lines.push(`const ${l} = ${readInt(m.type, at)} !== 0;`);
          break;
        default:
          lines.push(`const ${l} = ${readMember(m.type, at, `${def.id}.${f.name}`)};`);
      }
    }
    const key = JSON.stringify(f.name);
    const json = f.type === 'string' ? `q(${l})` : f.type === 'string[]' ? `qa(${l})` : `${l}`;
    parts.push(`${JSON.stringify((parts.length ? ',' : '{') + key + ':')} + ${json}`);
  }

  const { source: test, regexes } = compileFilter(filter, fieldTypes(def), local);
  const body = (ret: string) => `return function (o, n) {\n  ${lines.join('\n  ')}\n  if (!(${test})) return undefined;\n  return ${ret};\n};`;
  const encodeSrc = body(`${parts.join(' + ')} + '}'`);
  const decodeSrc = body(`{ ${def.fields.map((f) => `${JSON.stringify(f.name)}: ${local(f.name)}`).join(', ')} }`);
  const helpers = makeHelpers(view.buf, clock);
  const make = (src: string) =>
    new Function('buf', 'dv', 'R', 'u64', 'cstr', 'cstrs', 'ts', 'q', 'qa', src)(
      view.buf, view.dv, regexes, helpers.u64, helpers.cstr, helpers.cstrs, helpers.ts, helpers.q, helpers.qa,
    );
  return { encode: make(encodeSrc), decode: make(decodeSrc) };
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

const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

function makeHelpers(buf: Buffer, clock: Clock) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let cachedSecond = -1;
  let cachedPrefix = '';
  const offset = clock.bootToWallNs;
  const offsetSec = Number(offset / 1_000_000_000n);
  const offsetNs = Number(offset % 1_000_000_000n);
  return {
    u64: (at: number) => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 4294967296,
    cstr(start: number, max: number): string {
      let end = start;
      const limit = start + max;
      if (max > 64) {
        end = buf.indexOf(0, start);
        if (end < 0 || end > limit) end = limit;
      } else {
        while (end < limit && buf[end] !== 0) end++;
      }
      return buf.toString('utf8', start, end);
    },
    cstrs(start: number, length: number): string[] {
      if (length <= 0) return [];
      const text = buf.toString('utf8', start, start + length);
      const list = text.split('\u0000');
      if (list[list.length - 1] === '') list.pop();
      return list;
    },
    /** RFC 3339 with nanoseconds; the ISO prefix is cached per second */
    ts(at: number): string {
      // Exact integer arithmetic below 2^53 at every step, without BigInt (slower
      // per event): boot ns = hi * 2^32 + lo, and 2^32 ns = 4 s + 294967296 ns,
      // whose product with hi is split once more into µs and ns.
      const lo = dv.getUint32(at, true);
      const hi = dv.getUint32(at + 4, true);
      const us = hi * 294967;
      let sec = hi * 4 + Math.floor(us / 1e6) + offsetSec;
      let ns = (us % 1e6) * 1000 + hi * 296 + lo + offsetNs;
      sec += Math.floor(ns / 1e9);
      ns %= 1e9;
      if (sec !== cachedSecond) {
        cachedSecond = sec;
        cachedPrefix = new Date(sec * 1000).toISOString().slice(0, 19) + '.';
      }
      return cachedPrefix + String(ns).padStart(9, '0') + 'Z';
    },
    q: (s: string) => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"'),
    qa: (a: string[]) => JSON.stringify(a),
  };
}
