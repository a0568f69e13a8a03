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
import { RE2JS } from 're2js';
import { ndjsonBatches, writeAtomic } from './artifacts.ts';

const SECRET_WORDS = 'password|passwd|pwd|passphrase|token|secret|api[-_]?key|access[-_]?key|auth[-_]?token|client[-_]?secret|private[-_]?key';

export const DEFAULT_REDACT: readonly string[] = [
  // --password=x, token=x, api_key:x, in args, URLs' queries and environment-style text
  `(?i)(?:\\b|--?)(?:${SECRET_WORDS})[=:](?P<secret>[^\\s&"',;]+)`,
  '(?i)authorization:\\s*(?:bearer|basic|token)\\s+(?P<secret>\\S+)',
  '(?i)\\bbearer\\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)',
  'AKIA[0-9A-Z]{16}',
  'gh[pousr]_[A-Za-z0-9]{36,}',
  // credentials in a URL: scheme://user:password@host
  '://[^/\\s:@]+:(?P<secret>[^/\\s@]+)@',
];

/** An argument naming a secret whose value is the next argument: `--password hunter2`. */
const FLAG_PATTERN = `(?i)^--?(?:${SECRET_WORDS})$`;

export const MASK = '***';

export class Redactor {
  private readonly flag = RE2JS.compile(FLAG_PATTERN);

  /**
   * `prefilter` is one combined pattern tested on a whole NDJSON line: a line it does not
   * match holds no match of any pattern, so it is kept as it is, unparsed. undefined when
   * that cannot be told from the line (a pattern anchored with ^ or $).
   */
  constructor(private readonly patterns: RE2JS[], private readonly prefilter: RE2JS | undefined) {}

  string(s: string): string {
    for (const p of this.patterns) s = mask(p, s);
    return s;
  }

  /** Every string in `v`, deeply; in an array, the element after a secret-naming flag too. */
  value(v: unknown): unknown {
    if (typeof v === 'string') return this.string(v);
    if (Array.isArray(v)) {
      return v.map((x, i) => (i > 0 && typeof x === 'string' && typeof v[i - 1] === 'string' && this.flag.matches(v[i - 1]) ? MASK : this.value(x)));
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = this.value(x);
      return out;
    }
    return v;
  }

  /** Could this NDJSON line hold a secret? (A JSON escape may hide one from the line's text: those lines are looked at.) */
  suspect(line: string): boolean {
    return this.prefilter === undefined || line.includes('\\') || this.prefilter.matcher(line).find();
  }

  line(line: string): string {
    if (!this.suspect(line)) return line;
    const before = JSON.parse(line);
    const after = this.value(before);
    const text = JSON.stringify(after);
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

function mask(p: RE2JS, s: string): string {
  const m = p.matcher(s);
  if (!m.find()) return s;
  const secret = Object.hasOwn(p.namedGroups(), 'secret');
  let out = '';
  let last = 0;
  do {
    const start = secret && m.start('secret') >= 0 ? m.start('secret') : m.start();
    const end = secret && m.start('secret') >= 0 ? m.end('secret') : m.end();
    if (end === start) continue;
    out += s.slice(last, start) + MASK;
    last = end;
  } while (m.find());
  return out + s.slice(last);
}

/** The defaults plus a recipe's patterns; a bad pattern throws with RE2's message. */
export function compileRedactor(extra: readonly string[] = []): Redactor {
  const sources = [...DEFAULT_REDACT, ...extra];
  const patterns = sources.map((src) => {
    try {
      return RE2JS.compile(src);
    } catch (err) {
      throw new Error(`redact pattern ${JSON.stringify(src)}: ${(err as Error).message}`, { cause: err });
    }
  });
  const anchored = extra.some((src) => /[$^]|\\[Azb]/.test(src.replace(/\[\^/g, '[')));
  // names are the patterns' own business: the combined test only needs to know whether any matches
  const group = (src: string) => {
    const plain = src.replace(/\(\?P<\w+>/g, '(?:');
    return plain.startsWith('(?i)') ? `(?i:${plain.slice(4)})` : `(?:${plain})`;
  };
  const prefilter = anchored ? undefined : RE2JS.compile([...sources, `(?i)"--?(?:${SECRET_WORDS})"`].map(group).join('|'));
  return new Redactor(patterns, prefilter);
}
