/**
 * A reader of raw BTF (the format in the object's .BTF section): enough to
 * take event struct layouts and .rodata/.bss variable offsets from the
 * compiled object, so the C header stays the single source of truth; and a
 * check that a blob is one whole BTF (a kernel's, before libbpf is given it).
 */

const BTF_MAGIC = 0xeb9f;

/**
 * Whether `buf` is one whole BTF blob: the magic, version 1, and a type and
 * a string section that lie inside it and end where it ends (a truncated or
 * overwritten file fails here rather than in libbpf).
 */
export function isWholeBtf(buf: Uint8Array): boolean {
  if (buf.length < 24) return false;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint16(0, true) !== BTF_MAGIC || dv.getUint8(2) !== 1) return false;
  const hdrLen = dv.getUint32(4, true);
  const [typeOff, typeLen, strOff, strLen] = [8, 12, 16, 20].map((o) => dv.getUint32(o, true));
  if (hdrLen < 24 || hdrLen > buf.length || typeOff % 4 !== 0 || strLen === 0) return false;
  const typeEnd = hdrLen + typeOff + typeLen;
  const strStart = hdrLen + strOff;
  const strEnd = strStart + strLen;
  if (typeEnd > strStart && strOff !== 0) return false;
  if (Math.max(typeEnd, strEnd) !== buf.length) return false;
  // the string section starts with the empty name and ends with a NUL
  return buf[strStart] === 0 && buf[strEnd - 1] === 0;
}

const enum Kind {
  INT = 1, PTR = 2, ARRAY = 3, STRUCT = 4, UNION = 5, ENUM = 6, FWD = 7, TYPEDEF = 8,
  VOLATILE = 9, CONST = 10, RESTRICT = 11, FUNC = 12, FUNC_PROTO = 13, VAR = 14,
  DATASEC = 15, FLOAT = 16, DECL_TAG = 17, TYPE_TAG = 18, ENUM64 = 19,
}

interface RawType {
  name: string;
  kind: Kind;
  vlen: number;
  kflag: boolean;
  /** size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, referenced type id otherwise */
  sizeOrType: number;
  int?: { bits: number; signed: boolean };
  array?: { type: number; nelems: number };
  /** VAR: 0 static, 1 global, 2 extern (FUNC keeps its linkage in vlen) */
  linkage?: number;
  members?: { name: string; type: number; bitOffset: number }[];
  vars?: { type: number; offset: number; size: number }[];
}

/** What a struct member or a global variable is, once typedefs and qualifiers are peeled off. */
export type BtfValueType =
  | { kind: 'int'; size: number; signed: boolean }
  | { kind: 'array'; elem: BtfValueType; nelems: number; size: number }
  | { kind: 'struct'; name: string; size: number }
  | { kind: 'other'; size: number };

export interface BtfMember {
  name: string;
  offset: number; // bytes
  type: BtfValueType;
}

export interface BtfStruct {
  name: string;
  size: number;
  members: BtfMember[];
}

export interface BtfVariable {
  name: string;
  offset: number;
  size: number;
  type: BtfValueType;
}

export class Btf {
  private readonly types: RawType[] = [];

  constructor(raw: Uint8Array) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (dv.getUint16(0, true) !== BTF_MAGIC) throw new Error('not BTF data (bad magic)');
    const hdrLen = dv.getUint32(4, true);
    const typeOff = hdrLen + dv.getUint32(8, true);
    const typeEnd = typeOff + dv.getUint32(12, true);
    const strOff = hdrLen + dv.getUint32(16, true);
    const strLen = dv.getUint32(20, true);
    const strings = Buffer.from(raw.buffer, raw.byteOffset + strOff, strLen);
    const str = (off: number) => {
      const end = strings.indexOf(0, off);
      return strings.toString('latin1', off, end < 0 ? strLen : end);
    };

    this.types.push({ name: '', kind: 0 as Kind, vlen: 0, kflag: false, sizeOrType: 0 }); // id 0 = void
    let p = typeOff;
    const u32 = () => { const v = dv.getUint32(p, true); p += 4; return v; };
    while (p < typeEnd) {
      const name = str(u32());
      const info = u32();
      const sizeOrType = u32();
      const t: RawType = { name, kind: (info >>> 24) & 0x1f, vlen: info & 0xffff, kflag: info >>> 31 === 1, sizeOrType };
      switch (t.kind) {
        case Kind.INT: {
          const v = u32();
          t.int = { bits: v & 0xff, signed: (v >>> 24 & 1) === 1 };
          break;
        }
        case Kind.ARRAY: {
          const type = u32(); u32(); const nelems = u32();
          t.array = { type, nelems };
          break;
        }
        case Kind.STRUCT:
        case Kind.UNION:
          t.members = [];
          for (let i = 0; i < t.vlen; i++) {
            const mname = str(u32()); const type = u32(); const off = u32();
            t.members.push({ name: mname, type, bitOffset: t.kflag ? off & 0xffffff : off });
          }
          break;
        case Kind.ENUM: p += 8 * t.vlen; break;
        case Kind.ENUM64: p += 12 * t.vlen; break;
        case Kind.FUNC_PROTO: p += 8 * t.vlen; break;
        case Kind.VAR: t.linkage = u32(); break;
        case Kind.DATASEC:
          t.vars = [];
          for (let i = 0; i < t.vlen; i++) t.vars.push({ type: u32(), offset: u32(), size: u32() });
          break;
        case Kind.DECL_TAG: p += 4; break;
        default: break; // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG carry nothing more
      }
      this.types.push(t);
    }
  }

  /** The struct named `name`, with every member's byte offset and resolved type. */
  struct(name: string): BtfStruct {
    const t = this.types.find((x) => x.kind === Kind.STRUCT && x.name === name);
    if (!t) throw new Error(`struct ${name} is not in the object's BTF`);
    return {
      name,
      size: t.sizeOrType,
      members: t.members!.map((m) => {
        if (m.bitOffset % 8) throw new Error(`struct ${name}.${m.name}: bitfields are not supported in events`);
        return { name: m.name, offset: m.bitOffset / 8, type: this.resolve(m.type) };
      }),
    };
  }

  /** The variables of a data section such as `.rodata` or `.bss`, by name. */
  variables(section: string): Map<string, BtfVariable> {
    const sec = this.types.find((x) => x.kind === Kind.DATASEC && x.name === section);
    const out = new Map<string, BtfVariable>();
    for (const v of sec?.vars ?? []) {
      const variable = this.types[v.type];
      out.set(variable.name, { name: variable.name, offset: v.offset, size: v.size, type: this.resolve(variable.sizeOrType) });
    }
    return out;
  }

  /**
   * The typed `__ksym` externs (kfuncs, kernel variables with a type):
   * libbpf resolves them in the kernel's own BTF, so the object loads only
   * where the kernel has one. (An untyped `const void` ksym is looked up in
   * kallsyms instead.)
   */
  typedKsyms(): string[] {
    const EXTERN = 2;
    const typed = (t: RawType) => {
      let u = this.types[t.sizeOrType];
      while ([Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG].includes(u.kind)) u = this.types[u.sizeOrType];
      return u !== this.types[0];
    };
    return this.types.filter((t) => (t.kind === Kind.FUNC && t.vlen === EXTERN) || (t.kind === Kind.VAR && t.linkage === EXTERN && typed(t))).map((t) => t.name);
  }

  private resolve(id: number): BtfValueType {
    let t = this.types[id];
    while ([Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG].includes(t.kind)) t = this.types[t.sizeOrType];
    switch (t.kind) {
      case Kind.INT:
        return { kind: 'int', size: t.sizeOrType, signed: t.int!.signed };
      case Kind.ENUM:
        return { kind: 'int', size: t.sizeOrType, signed: t.kflag };
      case Kind.ARRAY: {
        const elem = this.resolve(t.array!.type);
        return { kind: 'array', elem, nelems: t.array!.nelems, size: elem.size * t.array!.nelems };
      }
      case Kind.STRUCT:
      case Kind.UNION:
        return { kind: 'struct', name: t.name, size: t.sizeOrType };
      case Kind.PTR:
        return { kind: 'other', size: 8 };
      default:
        return { kind: 'other', size: t.sizeOrType };
    }
  }
}
