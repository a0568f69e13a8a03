/**
 * Secrets stay out of reports: RE2 patterns (re2js, as the filters use: linear time,
 * whatever a recipe or an event holds) whose matches become `***` in every string of
 * every event before the events are sealed into DIR/raw, and so in every artifact, the
 * summary, report.md, annotations and JUnit made from them. A pattern with a named group
 * `secret` masks only that group (`--password=***`, `https://user:***@host`).
 *
 * The defaults do not mask `-pVALUE` (mysql's password form): `-p` is a port (ssh, nc),
 * `mkdir -p`, `cp -p` far more often; a recipe that runs mysql adds `^-p(?P<secret>.+)`.
 */
import type { RE2JS } from 're2js';
import { compileRe2 } from '../deferred.ts';
import { ndjsonBatches, writeAtomic } from './artifacts.ts';

const SECRET_WORDS = 'password|passwd|pwd|passphrase|token|secret|api[-_]?key|access[-_]?key|auth[-_]?token|client[-_]?secret|private[-_]?key';

/**
 * The defaults are V8 regular expressions, ours and reviewed to be linear (no nested or
 * overlapping quantifiers): RE2JS takes 10-30 µs a line for case-insensitive alternations
 * like these, V8 under 1 µs (bench/redact.ts). A recipe's own patterns are RE2 (re2js),
 * since nobody reviewed them.
 */
export const DEFAULT_REDACT: readonly RegExp[] = [
  // --password=x, token=x, api_key:x, in args, URLs' queries and environment-style text
  new RegExp(`(?:\\b|--?)(?:${SECRET_WORDS})[=:](?<secret>[^\\s&"',;]+)`, 'gdi'),
  // --password VALUE inside one string (a shell script's text: sh -c "… --token x …")
  new RegExp(`--(?:${SECRET_WORDS})\\s+(?<secret>[^\\s"'-][^\\s"']*)`, 'gdi'),
  /authorization:\s*(?:bearer|basic|token)\s+(?<secret>\S+)/dgi,
  /\bbearer\s+(?<secret>[A-Za-z0-9._~+/-]{16,}=*)/dgi,
  /AKIA[0-9A-Z]{16}/dg,
  /gh[pousr]_[A-Za-z0-9]{36,}/dg,
  // credentials in a URL: scheme://user:password@host
  /:\/\/[^/\s:@]+:(?<secret>[^/\s@]+)@/dg,
];

/** One test a line for all the defaults; a line it does not match holds no match of any of them. */
const DEFAULT_PREFILTER = new RegExp([...DEFAULT_REDACT.map((r) => r.source.replace(/\(\?<\w+>/g, '(?:')), `"--?(?:${SECRET_WORDS})"`].join('|'), 'i');

/** An argument naming a secret whose value is the next argument: `--password hunter2`. */
const FLAG = new RegExp(`^--?(?:${SECRET_WORDS})$`, 'i');

export const MASK = '***';

/** Masks the matches of one pattern in a string. */
type Masker = (s: string) => string;

export class Redactor {
  /**
   * `userTests` are the recipe's patterns, tested on a whole NDJSON line; undefined when
   * that cannot tell (a pattern anchored with ^ or $ means the start of a value, not of the line).
   */
  constructor(private readonly maskers: Masker[], private readonly userTests: RE2JS[] | undefined) {}

  string(s: string): string {
    for (const m of this.maskers) s = m(s);
    return s;
  }

  /** Every string in `v`, deeply; in an array, the element after a secret-naming flag too. */
  value(v: unknown): unknown {
    if (typeof v === 'string') return this.string(v);
    if (Array.isArray(v)) return v.map((x, i) => (i > 0 && typeof x === 'string' && typeof v[i - 1] === 'string' && FLAG.test(v[i - 1]) ? MASK : this.value(x)));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = this.value(x);
      return out;
    }
    return v;
  }

  /** Could this NDJSON line hold a secret? (A JSON escape may hide one from the line's text: those lines are looked at.) */
  suspect(line: string): boolean {
    if (this.userTests === undefined || line.includes('\\') || DEFAULT_PREFILTER.test(line)) return true;
    return this.userTests.some((p) => p.matcher(line).find());
  }

  line(line: string): string {
    if (!this.suspect(line)) return line;
    const before = JSON.parse(line);
    const text = JSON.stringify(this.value(before));
    // unchanged events keep their exact bytes
    return text === JSON.stringify(before) ? line : text;
  }

  /** Redact an NDJSON file in place (atomically); a file with no suspect line is only read. Returns the lines changed. */
  async file(file: string): Promise<number> {
    let suspects = 0;
    for await (const lines of ndjsonBatches(file)) for (const l of lines) if (this.suspect(l)) suspects++;
    if (!suspects) return 0;
    let changed = 0;
    await writeAtomic(file, async (out) => {
      for await (const lines of ndjsonBatches(file)) {
        let chunk = '';
        for (const l of lines) {
          const r = this.line(l);
          if (r !== l) changed++;
          chunk += r + '\n';
        }
        out.write(chunk);
      }
    });
    return changed;
  }
}

/** Replace [start, end) spans with the mask, left to right. */
function splice(s: string, spans: [number, number][]): string {
  let out = '';
  let last = 0;
  for (const [start, end] of spans) {
    if (end <= start || start < last) continue;
    out += s.slice(last, start) + MASK;
    last = end;
  }
  return spans.length ? out + s.slice(last) : s;
}

function jsMasker(re: RegExp): Masker {
  return (s) => {
    // matchAll starts from lastIndex, which a global test() moves
    re.lastIndex = 0;
    const hit = re.test(s);
    re.lastIndex = 0;
    if (!hit) return s;
    const spans: [number, number][] = [];
    for (const m of s.matchAll(re)) spans.push((m.indices!.groups?.secret ?? m.indices![0]) as [number, number]);
    return splice(s, spans);
  };
}

function re2Masker(p: RE2JS): Masker {
  const secret = Object.hasOwn(p.namedGroups(), 'secret');
  return (s) => {
    const m = p.matcher(s);
    const spans: [number, number][] = [];
    while (m.find()) spans.push(secret && m.start('secret') >= 0 ? [m.start('secret'), m.end('secret')] : [m.start(), m.end()]);
    return splice(s, spans);
  };
}

/** The defaults plus a recipe's patterns (RE2 syntax); a bad pattern throws with RE2's message. */
export function compileRedactor(extra: readonly string[] = []): Redactor {
  const user = extra.map((src) => {
    try {
      return compileRe2(src);
    } catch (err) {
      throw new Error(`redact pattern ${JSON.stringify(src)}: ${(err as Error).message}`, { cause: err });
    }
  });
  const anchored = extra.some((src) => /[$^]|\\[Azb]/.test(src.replace(/\[\^/g, '[')));
  return new Redactor([...DEFAULT_REDACT.map(jsMasker), ...user.map(re2Masker)], anchored ? undefined : user);
}
