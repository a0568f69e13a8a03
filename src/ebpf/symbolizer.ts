/**
 * Instruction pointers to function names. Kernel frames from /proc/kallsyms;
 * user frames from the mapping that holds them (/proc/PID/maps, read when the
 * process is first sampled, so it is known after the process is gone) and
 * that file's ELF symbols (.symtab, else a build-id debug file under
 * /usr/lib/debug/.build-id, else .dynsym); frames in anonymous memory from
 * the JIT's /tmp/perf-PID.map (node --perf-basic-prof). Names from .symtab
 * are mangled for C++: demangle() runs llvm-cxxfilt once over all of them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileOffsetToVaddr, readElfSymbols, type ElfSymbols } from './elf.ts';
import { kernelAddress, loadKallsyms, SymbolTable } from './stacks.ts';

export interface Mapping {
  start: number;
  end: number;
  offset: number;
  /** the file, '' for anonymous memory, '[vdso]' and the like for special ones */
  path: string;
}

/** Parse /proc/PID/maps text: executable mappings only. */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    // 5581a000-5581b000 r-xp 00001000 08:01 1234   /usr/bin/cat
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
    if (!m || m[3][2] !== 'x') continue;
    out.push({ start: parseInt(m[1], 16), end: parseInt(m[2], 16), offset: parseInt(m[4], 16), path: m[5].replace(/ \(deleted\)$/, '') });
  }
  return out;
}

const DEBUG_ROOT = '/usr/lib/debug/.build-id';

export class Symbolizer {
  private kernel?: SymbolTable;
  private readonly maps = new Map<number, Mapping[] | null>();
  private readonly roots = new Map<number, string>();
  private readonly elves = new Map<string, ElfSymbols | null>();
  private readonly perfMaps = new Map<number, SymbolTable | null>();
  /** per process: address → name, as stacks share most of their frames */
  private readonly names = new Map<number, Map<number, string>>();

  constructor(private readonly opts: { kallsyms?: string; perfMapDir?: string } = {}) {}

  /** Remember a process's executable mappings now (it may be gone by symbolization). */
  noteProcess(pid: number): void {
    if (this.maps.get(pid)) return;
    try {
      this.maps.set(pid, parseMaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8')));
      // a process in a container sees its files under its own root
      const root = fs.readlinkSync(`/proc/${pid}/root`);
      if (root !== '/') this.roots.set(pid, `/proc/${pid}/root`);
    } catch {
      this.maps.set(pid, null); // exited already
    }
  }

  get processesNoted(): number {
    return [...this.maps.values()].filter(Boolean).length;
  }

  kernelFrames(ips: bigint[]): string[] {
    this.kernel ??= loadKallsyms(this.opts.kallsyms);
    return ips.map((ip) => this.kernel!.find(kernelAddress(ip)) ?? `0x${ip.toString(16)}`);
  }

  /** Names of a user stack (innermost first), '[unknown]' or '[file]' where no symbol holds the address. */
  userFrames(pid: number, ips: bigint[]): string[] {
    if (!this.maps.has(pid)) this.noteProcess(pid);
    const maps = this.maps.get(pid);
    let cache = this.names.get(pid);
    if (!cache) this.names.set(pid, (cache = new Map()));
    return ips.map((ip, i) => {
      // a return address points after the call: look up the call itself
      const addr = Number(ip) - (i > 0 ? 1 : 0);
      let name = cache.get(addr);
      if (name === undefined) cache.set(addr, (name = this.userFrame(pid, maps, addr)));
      return name;
    });
  }

  private userFrame(pid: number, maps: Mapping[] | null | undefined, addr: number): string {
    const m = maps?.find((x) => addr >= x.start && addr < x.end);
    if (!m || m.path === '' || m.path.startsWith('[anon')) return this.jitFrame(pid, addr) ?? '[unknown]';
    if (m.path.startsWith('[')) return m.path;
    const elf = this.elf(pid, m.path);
    const name = elf && elf.symbols.find(fileOffsetToVaddr(elf, addr - m.start + m.offset));
    return name ?? `[${path.basename(m.path)}]`;
  }

  private jitFrame(pid: number, addr: number): string | undefined {
    if (!this.perfMaps.has(pid)) this.perfMaps.set(pid, readPerfMap(path.join(this.opts.perfMapDir ?? '/tmp', `perf-${pid}.map`)));
    return this.perfMaps.get(pid)?.find(addr);
  }

  private elf(pid: number, file: string): ElfSymbols | null {
    const root = this.roots.get(pid);
    const full = root && fs.existsSync(`${root}${file}`) ? `${root}${file}` : file;
    if (!this.elves.has(full)) this.elves.set(full, loadElf(full));
    return this.elves.get(full)!;
  }
}

function loadElf(file: string): ElfSymbols | null {
  try {
    const elf = readElfSymbols(file);
    if (elf.source !== '.symtab' && elf.buildId) {
      // a stripped binary whose debug package is installed
      const debug = path.join(DEBUG_ROOT, elf.buildId.slice(0, 2), `${elf.buildId.slice(2)}.debug`);
      if (fs.existsSync(debug)) {
        const d = readElfSymbols(debug);
        if (d.source === '.symtab') return { ...elf, symbols: d.symbols, source: '.symtab' };
      }
    }
    return elf;
  } catch {
    return null; // gone, unreadable, not ELF: its frames show the file name
  }
}

/** A JIT's perf map: "START SIZE name" per line, hex without 0x. */
export function readPerfMap(file: string): SymbolTable | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const entries: { start: number; end: number; name: string }[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    if (a < 0 || b < 0) continue;
    const start = parseInt(line.slice(0, a), 16);
    const size = parseInt(line.slice(a + 1, b), 16);
    if (Number.isFinite(start) && Number.isFinite(size)) entries.push({ start, end: start + size, name: line.slice(b + 1) });
  }
  return new SymbolTable(entries);
}

/** C++ names demangled by llvm-cxxfilt in one run (names that are not mangled come back as they are). */
export function demangle(names: string[]): Map<string, string> {
  const mangled = [...new Set(names.filter((n) => n.startsWith('_Z')))];
  const out = new Map<string, string>();
  if (!mangled.length) return out;
  try {
    const lines = execFileSync('llvm-cxxfilt', [], { input: mangled.join('\n'), maxBuffer: 256 << 20 }).toString().split('\n');
    mangled.forEach((m, i) => out.set(m, lines[i] || m));
  } catch {
    // llvm-cxxfilt missing: keep the mangled names
  }
  return out;
}
