/** The name tables (generated from the kernel's uapi headers) and how flag words are named. */
export { CAPABILITIES } from './capabilities.ts';
export { ERRNO } from './errno.ts';
export { MOUNT_FLAGS } from './mount-flags.ts';
export { OPEN_FLAGS } from './open-flags.ts';
export { SIGNALS } from './signals.ts';
import { SYSCALLS_X86_64 } from './syscalls-x86_64.ts';

const SYSCALL_NUMBERS: ReadonlyMap<string, number> = new Map(Object.entries(SYSCALLS_X86_64).map(([nr, name]) => [name, Number(nr)]));

/** The syscall's number on x86-64, undefined for a name it does not have. */
export const syscallNumber = (name: string): number | undefined => SYSCALL_NUMBERS.get(name);

/** open(2)'s access mode: the low two bits are a number, not flags. */
export const OPEN_ACCESS_MODES: Readonly<Record<number, string>> = { 0: 'O_RDONLY', 1: 'O_WRONLY', 2: 'O_RDWR' };

/**
 * Names of the set bits of a 32-bit `value`, ascending, joined by '|'; bits
 * without a name as 0x… (one per bit); 0 is `names[0]` or "".
 */
export function flagNames(value: number, names: Readonly<Record<number, string>>): string {
  let v = value >>> 0;
  if (v === 0) return names[0] ?? '';
  let out = '';
  for (let bit = 1; v !== 0; bit = (bit << 1) >>> 0) {
    if ((v & bit) === 0) continue;
    v = (v & ~bit) >>> 0;
    out += (out ? '|' : '') + (names[bit] ?? `0x${bit.toString(16)}`);
  }
  return out;
}

/** The longest text flagNames can return for a member of `bits` bits. */
export function flagNamesMaxLength(names: Readonly<Record<number, string>>, bits: number): number {
  let n = bits - 1; // separators
  for (let i = 0; i < bits; i++) {
    const bit = 2 ** i;
    n += Math.max(names[bit]?.length ?? 0, `0x${bit.toString(16)}`.length);
  }
  return Math.max(n, names[0]?.length ?? 0);
}

/** The longest name of a table. */
export function longestName(names: Readonly<Record<number, string>>): number {
  return Math.max(0, ...Object.values(names).map((n) => n.length));
}
