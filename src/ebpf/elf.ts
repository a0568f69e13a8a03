/**
 * Function symbols of an ELF64 file (.symtab, else .dynsym), its PT_LOAD
 * segments (to turn a file offset into the address symbols use), its GNU
 * build id, and named sections (a kernel image's .BTF). Only the headers and
 * the sections asked for are read, not the whole file: a node binary is
 * ~100 MB, a vmlinux with debug info several hundred.
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

interface ElfHeaders {
  sections: Section[];
  segments: ElfSymbols['segments'];
}

/** The section and PT_LOAD headers of an ELF64 little-endian file; throws on anything else. */
function readHeaders(fd: number, file: string): ElfHeaders {
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
  return { sections: raw.map((s) => ({ ...s, name: cstr(names, s.nameOff) })), segments };
}

/**
 * The NT_GNU_BUILD_ID among ELF notes (a note section's bytes, or
 * /sys/kernel/notes, which holds the running kernel's): hex, or undefined.
 */
export function gnuBuildId(notes: Buffer): string | undefined {
  const align = (n: number) => (n + 3) & ~3;
  for (let off = 0; off + 12 <= notes.length; ) {
    const namesz = notes.readUInt32LE(off);
    const descsz = notes.readUInt32LE(off + 4);
    const type = notes.readUInt32LE(off + 8);
    const name = notes.subarray(off + 12, off + 12 + namesz);
    const desc = off + 12 + align(namesz);
    if (desc + descsz > notes.length) return undefined;
    if (type === NT_GNU_BUILD_ID && name.toString('latin1') === 'GNU\0' && descsz > 0) return notes.subarray(desc, desc + descsz).toString('hex');
    off = desc + align(descsz);
  }
  return undefined;
}

function buildIdOf(fd: number, sections: Section[]): string | undefined {
  for (const s of sections.filter((x) => x.type === SHT_NOTE)) {
    const id = gnuBuildId(readAt(fd, s.offset, s.size));
    if (id) return id;
  }
  return undefined;
}

/**
 * What a kernel image (vmlinux, ELF) says about itself without reading all
 * of it: its GNU build id, and the named sections' bytes (undefined when it
 * has none of that name), e.g. `.BTF` and `.rodata`.
 */
export function readElfSections(file: string, names: string[]): { buildId?: string; sections: Map<string, Buffer> } {
  const fd = fs.openSync(file, 'r');
  try {
    const { sections } = readHeaders(fd, file);
    const out = new Map<string, Buffer>();
    for (const name of names) {
      const s = sections.find((x) => x.name === name);
      if (s) out.set(name, readAt(fd, s.offset, s.size));
    }
    return { buildId: buildIdOf(fd, sections), sections: out };
  } finally {
    fs.closeSync(fd);
  }
}

/** Read an ELF64 little-endian file's symbols; throws on anything else. */
export function readElfSymbols(file: string): ElfSymbols {
  const fd = fs.openSync(file, 'r');
  try {
    const { sections, segments } = readHeaders(fd, file);
    const buildId = buildIdOf(fd, sections);

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
