/**
 * Durations as recipes write them: a number of seconds, or a number with a
 * unit — 500ms, 30s, 5m, 1h, 2d — and compounds of those (1m30s). Node's
 * timers hold at most 2^31−1 ms (longer ones silently fire after 1 ms), so a
 * duration is > 0 and at most MAX_DURATION_MS.
 */
export const MAX_DURATION_MS = 24 * 24 * 3_600_000; // 24 days, below 2^31−1 ms
const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)/y;

/** The duration in ms; throws with what to write when it is not one or is out of range. */
export function parseDuration(value: number | string): number {
  const ms = typeof value === 'number' ? value * 1000 : parseText(value);
  if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_DURATION_MS) {
    throw new Error(`${describe(value)} is out of range: a duration is more than 0 and at most 24 days (24d)`);
  }
  return ms;
}

function parseText(value: string): number {
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < value.length) {
    const at = PART.lastIndex;
    const m = PART.exec(value);
    if (!m || m.index !== at) throw new Error(`${describe(value)} is not a duration (write 500ms, 30s, 1m30s, 5m, 1h or 2d)`);
    ms += Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
  }
  if (!value) throw new Error('"" is not a duration (write 500ms, 30s, 1m30s, 5m, 1h or 2d)');
  return ms;
}

function describe(value: number | string): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(excerpt(value));
}

/** At most `max` characters of a value a user gave, for messages. */
export function excerpt(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Sizes as recipes write them: 64KiB, 16MiB, 1GiB. */
export function parseSize(value: string): number {
  const m = /^([0-9]{1,6})(KiB|MiB|GiB)$/.exec(value);
  if (!m) throw new Error(`${JSON.stringify(excerpt(value))} is not a size (write 256KiB, 16MiB or 1GiB)`);
  return Number(m[1]) * { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[2] as 'KiB' | 'MiB' | 'GiB'];
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3}GiB`;
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes} bytes`;
}
