/**
 * Function symbols of an ELF64 file (.symtab, else .dynsym), its PT_LOAD
 * segments (to turn a file offset into the address symbols use) and its GNU
 * build id. Only the headers and the symbol sections are read, not the
 * whole file: a node binary is ~100 MB.
 */
import fs from 'node:fs';
import { SymbolTable } from './stacks.ts';

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_NOTE = 7;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const PT_LOAD = 1;
const NT_GNU_BUILD_ID = 3;

export interface ElfSymbols {
  symbols: SymbolTable;
  /** PT_LOAD segments: file offset → virtual address */
  segments: { offset: number; vaddr: number; size: number }[];
  buildId?: string;
  /** which table the symbols came from */
  source: '.symtab' | '.dynsym' | 'none';
}

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

interface Section { name: string; type: number; offset: number; size: number; link: number; entsize: number }

/** Read an ELF64 little-endian file's symbols; throws on anything else. */
export function readElfSymbols(file: string): ElfSymbols {
  const fd = fs.openSync(file, 'r');
  try {
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not an ELF file`);
    if (eh[4] !== 2 || eh[5] !== 1) throw new Error(`${file}: only 64-bit little-endian ELF is read`);
    const phoff = Number(eh.readBigUInt64LE(32));
    const shoff = Number(eh.readBigUInt64LE(40));
    const phnum = eh.readUInt16LE(56);
    const shnum = eh.readUInt16LE(60);
    const shstrndx = eh.readUInt16LE(62);

    const segments: ElfSymbols['segments'] = [];
    const ph = readAt(fd, phoff, phnum * 56);
    for (let i = 0; i < phnum; i++) {
      const o = i * 56;
      if (ph.readUInt32LE(o) !== PT_LOAD) continue;
      segments.push({ offset: Number(ph.readBigUInt64LE(o + 8)), vaddr: Number(ph.readBigUInt64LE(o + 16)), size: Number(ph.readBigUInt64LE(o + 32)) });
    }

    const sh = readAt(fd, shoff, shnum * 64);
    const raw = Array.from({ length: shnum }, (_, i) => {
      const o = i * 64;
      return {
        nameOff: sh.readUInt32LE(o),
        type: sh.readUInt32LE(o + 4),
        offset: Number(sh.readBigUInt64LE(o + 24)),
        size: Number(sh.readBigUInt64LE(o + 32)),
        link: sh.readUInt32LE(o + 40),
        entsize: Number(sh.readBigUInt64LE(o + 56)),
      };
    });
    const names = shstrndx < raw.length ? readAt(fd, raw[shstrndx].offset, raw[shstrndx].size) : Buffer.alloc(0);
    const sections: Section[] = raw.map((s) => ({ ...s, name: cstr(names, s.nameOff) }));

    let buildId: string | undefined;
    const note = sections.find((s) => s.type === SHT_NOTE && s.name === '.note.gnu.build-id');
    if (note) {
      const b = readAt(fd, note.offset, note.size);
      const namesz = b.readUInt32LE(0);
      const descsz = b.readUInt32LE(4);
      if (b.readUInt32LE(8) === NT_GNU_BUILD_ID) buildId = b.subarray(12 + ((namesz + 3) & ~3), 12 + ((namesz + 3) & ~3) + descsz).toString('hex');
    }

    const table = sections.find((s) => s.type === SHT_SYMTAB) ?? sections.find((s) => s.type === SHT_DYNSYM);
    if (!table) return { symbols: new SymbolTable([]), segments, buildId, source: 'none' };
    const strtab = readAt(fd, sections[table.link].offset, sections[table.link].size);
    const syms = readAt(fd, table.offset, table.size);
    const entries: { start: number; end?: number; name: string }[] = [];
    const ent = table.entsize || 24;
    for (let o = 0; o + ent <= syms.length; o += ent) {
      const type = syms[o + 4] & 0xf;
      if (type !== STT_FUNC && type !== STT_GNU_IFUNC) continue;
      const start = Number(syms.readBigUInt64LE(o + 8));
      if (!start || syms.readUInt16LE(o + 6) === 0 /* SHN_UNDEF */) continue;
      const size = Number(syms.readBigUInt64LE(o + 16));
      entries.push({ start, end: size ? start + size : undefined, name: cstr(strtab, syms.readUInt32LE(o)) });
    }
    return { symbols: new SymbolTable(entries), segments, buildId, source: table.type === SHT_SYMTAB ? '.symtab' : '.dynsym' };
  } finally {
    fs.closeSync(fd);
  }
}

function cstr(buf: Buffer, off: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 ? buf.length : end);
}

/** The address a file offset is loaded at, per the PT_LOAD segments (the offset itself when none holds it). */
export function fileOffsetToVaddr(elf: ElfSymbols, offset: number): number {
  for (const s of elf.segments) if (offset >= s.offset && offset < s.offset + s.size) return offset - s.offset + s.vaddr;
  return offset;
}
