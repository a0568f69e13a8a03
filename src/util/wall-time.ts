/**
 * Wall-clock ns since the epoch as RFC 3339 with nanoseconds, the format the
 * generated codecs write: gadgets that build events outside a codec must
 * write timestamps the same way, or sorting and merging by text breaks.
 */
export function wallTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  return `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`;
}
