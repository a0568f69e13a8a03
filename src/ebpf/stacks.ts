/**
 * Stacks from a BPF_MAP_TYPE_STACK_TRACE map, and kernel symbols from
 * /proc/kallsyms.
 */
import fs from 'node:fs';
import type { KernelMap } from './map.ts';

/** The instruction pointers of one stack, innermost first ([] when the id is gone or negative). */
export function readStack(map: KernelMap, id: number): bigint[] {
  if (id < 0) return [];
  const key = Buffer.alloc(4);
  key.writeUInt32LE(id);
  const value = map.lookup(key);
  if (!value) return [];
  const all = new BigUint64Array(value.buffer, value.byteOffset, value.length >>> 3);
  const end = all.indexOf(0n); // the kernel zero-fills past the last frame
  return Array.from(end < 0 ? all : all.subarray(0, end));
}

/** A sorted symbol table: start addresses and names, found by binary search. */
export class SymbolTable {
  private readonly starts: Float64Array;
  constructor(private readonly entries: { start: number; end?: number; name: string }[]) {
    entries.sort((a, b) => a.start - b.start);
    this.starts = Float64Array.from(entries, (e) => e.start);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The symbol containing `addr` (the last one starting at or below it, within its size if it has one). */
  find(addr: number): string | undefined {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    if (hi < 0 || addr < s[0]) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (s[mid] <= addr) lo = mid;
      else hi = mid - 1;
    }
    const e = this.entries[lo];
    if (e.end !== undefined && addr >= e.end) return undefined;
    return e.name;
  }
}

/** A kernel address as SymbolTable keys it: its low 48 bits (kernel space all starts 0xffff). */
export function kernelAddress(ip: bigint): number {
  return Number(BigInt.asUintN(48, ip));
}

/**
 * Kernel symbols (text only: t/T/w/W). Addresses read 0 without
 * CAP_SYSLOG (kptr_restrict): then frames stay as hex.
 */
export function loadKallsyms(file = '/proc/kallsyms'): SymbolTable {
  const text = fs.readFileSync(file, 'latin1');
  const entries: { start: number; name: string }[] = [];
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    // "ffffffff81000000 T _stext [module]"
    const sp1 = text.indexOf(' ', pos);
    const type = text.charCodeAt(sp1 + 1) | 0x20; // lower case
    if (type === 0x74 /* t */ || type === 0x77 /* w */) {
      // the low 48 bits: exact as a Number, and one-to-one over kernel space (kernelAddress)
      const start = parseInt(text.slice(Math.max(pos, sp1 - 12), sp1), 16);
      // module symbols end in "\t[module]"
      const name = text.slice(sp1 + 3, nl);
      const tab = name.indexOf('\t');
      if (start) entries.push({ start, name: tab < 0 ? name : name.slice(0, tab) });
    }
    pos = nl + 1;
  }
  return new SymbolTable(entries);
}
