/** Durations as recipes write them: a number of seconds, or 500ms, 30s, 5m, 1h. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value * 1000;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
  if (!m) throw new Error(`"${value}" is not a duration (write 500ms, 30s, 5m or 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

/** Sizes as recipes write them: 64KiB, 16MiB. */
export function parseSize(value: string): number {
  const m = /^([0-9]+)(KiB|MiB)$/.exec(value);
  if (!m) throw new Error(`"${value}" is not a size (write 256KiB or 16MiB)`);
  return Number(m[1]) * (m[2] === 'KiB' ? 1024 : 1024 * 1024);
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}
