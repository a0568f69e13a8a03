/**
 * What a run shows while it runs, as ig and CI logs expect:
 * - the progress line on stderr: on a terminal one line redrawn in place
 *   (elapsed / duration, events and lost per step, rate), in colour unless
 *   NO_COLOR is set; elsewhere (CI logs) a plain line every PLAIN_EVERY_MS at
 *   most, so a long run does not flood the log;
 * - with `-o json|columns`, the events themselves on stdout, read from the
 *   steps' spools as they grow: NDJSON with the step's id added, or a table.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { formatMs, MAX_DURATION_MS } from '../steps/duration.ts';
import type { ObservedStep, RunObserver } from '../runner/run.ts';

export type OutputFormat = 'json' | 'columns';

/** A terminal redraws often; a log gets a line this often at most. */
export const TTY_EVERY_MS = 250;
export const PLAIN_EVERY_MS = 10_000;
/** How often the spools are read for new events. */
const TAIL_EVERY_MS = 100;

export interface Terminal {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Colour when the stream is a terminal and NO_COLOR (https://no-color.org) is unset or empty. */
export function useColour(stream: Terminal, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

const paint = (on: boolean, code: string, text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);

export interface ProgressOptions {
  /** stderr, where the line goes */
  stream: Terminal;
  colour?: boolean;
  /** the clock, in ms (tests give their own) */
  now?: () => number;
}

/** The live progress line, and the log lines that must not tear it. */
export class Progress implements RunObserver {
  private steps: ObservedStep[] = [];
  private timer?: NodeJS.Timeout;
  private started = 0;
  private lastTotal = 0;
  private lastAt = 0;
  private drawn = false;
  private readonly tty: boolean;
  private readonly colour: boolean;
  private readonly now: () => number;

  constructor(private readonly opts: ProgressOptions) {
    this.tty = opts.stream.isTTY === true;
    this.colour = opts.colour ?? useColour(opts.stream);
    this.now = opts.now ?? (() => performance.now());
  }

  attached(steps: ObservedStep[]): void {
    this.steps.push(...steps);
    if (this.timer) return;
    this.started = this.lastAt = this.now();
    this.timer = setInterval(() => this.tick(), this.tty ? TTY_EVERY_MS : PLAIN_EVERY_MS);
    this.timer.unref();
  }

  captured(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  /** A log line: on a terminal the progress line is taken away first and drawn again after. */
  log(line: string): void {
    this.clear();
    this.opts.stream.write(line + '\n');
    if (this.tty && this.timer) this.draw();
  }

  private tick(): void {
    if (this.tty) this.draw();
    else this.opts.stream.write(this.line() + '\n');
  }

  private draw(): void {
    // \r + erase line: the line is redrawn in place, never scrolled
    this.opts.stream.write(`\r\x1b[2K${this.line()}`);
    this.drawn = true;
  }

  /** Take the line away (before something else writes to the same terminal). */
  clear(): void {
    if (!this.drawn) return;
    this.opts.stream.write('\r\x1b[2K');
    this.drawn = false;
  }

  /** `gadget-run: 3.2s / 10s  opens 1234 events  execs 5 events, 2 lost  385 events/s` */
  line(): string {
    const now = this.now();
    const elapsed = now - this.started;
    const durations = this.steps.map((s) => s.durationMs).filter((d): d is number => d !== undefined);
    // a one-liner without a duration runs until Ctrl-C: the longest duration there is means no limit
    const longest = Math.max(...durations);
    const limit = durations.length === this.steps.length && durations.length && longest < MAX_DURATION_MS ? ` / ${formatMs(longest)}` : '';
    let total = 0;
    const parts = this.steps.map((s) => {
      const { events, lost } = s.progress();
      total += events;
      const lostText = lost ? paint(this.colour, '31', `, ${lost} lost`) : '';
      return `${paint(this.colour, '1', s.id)} ${events} events${lostText}`;
    });
    const dt = now - this.lastAt;
    const rate = dt > 0 ? Math.round(((total - this.lastTotal) * 1000) / dt) : 0;
    this.lastTotal = total;
    this.lastAt = now;
    return `${paint(this.colour, '2', 'gadget-run:')} ${formatMs(elapsed)}${limit}  ${parts.join('  ')}  ${rate} events/s`;
  }
}

/** Fields a table leaves out by default: ids a person rarely reads at a glance. */
const QUIET_FIELDS = new Set(['timestamp', 'tid', 'gid', 'cgroup_id', 'mntns_id']);
const WIDE_FIELDS = new Set(['comm', 'pcomm', 'flag_names']);
const LAST_FIELDS = new Set(['path', 'args', 'source', 'target']);

/** Reads each step's spool as it grows and prints its new events on stdout. */
export class EventPrinter implements RunObserver {
  private readonly tails: Tail[] = [];
  private timer?: NodeJS.Timeout;
  private headerFor?: string;
  private stopped = false;

  constructor(
    private readonly format: OutputFormat,
    private readonly out: Terminal = process.stdout,
    /** called before rows are written: the progress line shares the terminal */
    private readonly beforeWrite?: () => void,
  ) {}

  attached(steps: ObservedStep[]): void {
    for (const s of steps) this.tails.push(new Tail(s));
    this.timer ??= setInterval(() => this.poll(), TAIL_EVERY_MS);
  }

  captured(): void {
    clearInterval(this.timer);
    if (!this.stopped) this.poll();
    for (const t of this.tails) t.close();
  }

  /** stdout went away (EPIPE): print nothing more */
  stop(): void {
    this.stopped = true;
  }

  private poll(): void {
    if (this.stopped) return;
    for (const t of this.tails) {
      const lines = t.lines();
      if (lines.length) this.beforeWrite?.();
      for (const line of lines) {
        if (this.stopped) return;
        this.out.write(this.format === 'json' ? withStep(t.step.id, line) : this.row(t, line));
      }
    }
  }

  private row(t: Tail, line: string): string {
    const columns = (t.columns ??= columnsOf(t.step.fields, this.tails.length > 1));
    let header = '';
    if (this.headerFor !== t.step.id) {
      this.headerFor = t.step.id;
      header = formatRow(columns, columns.map((c) => c.name.toUpperCase())) + '\n';
    }
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line);
    } catch {
      return header;
    }
    return header + formatRow(columns, columns.map((c) => (c.name === 'step' ? t.step.id : cell(event[c.name])))) + '\n';
  }
}

/** `{"pid":1,…}` → `{"step":"opens","pid":1,…}` without parsing the line. */
function withStep(step: string, line: string): string {
  return `{"step":${JSON.stringify(step)},${line.slice(1)}\n`;
}

interface Column {
  name: string;
  width: number;
}

/**
 * IG-style columns: the ids people read, a number left out where its named
 * twin is shown (err → err_name, flags → flag_names), and the long free text
 * (path, args) last, where it is never cut.
 */
function columnsOf(fields: string[], withStep: boolean): Column[] {
  const has = new Set(fields);
  const named = (f: string) => has.has(`${f}_name`) || has.has(`${f}_names`) || has.has(`${f.replace(/s$/, '')}_names`);
  const shown = fields.filter((f) => !QUIET_FIELDS.has(f) && !named(f));
  const last = shown.filter((f) => LAST_FIELDS.has(f));
  const cols = [...shown.filter((f) => !LAST_FIELDS.has(f)), ...last].map((name) => ({ name, width: Math.max(name.length, WIDE_FIELDS.has(name) ? 16 : 7) }));
  return withStep ? [{ name: 'step', width: 12 }, ...cols] : cols;
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.join(' ');
  return String(v);
}

function formatRow(columns: Column[], cells: string[]): string {
  // eslint-disable-next-line no-control-regex
  const clean = (s: string) => s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return cells
    .map((c, i) => {
      const text = clean(c);
      if (i === cells.length - 1) return text;
      const w = columns[i].width;
      return (text.length > w ? text.slice(0, w - 1) + '…' : text).padEnd(w);
    })
    .join(' ');
}

/** The complete lines appended to a spool since the last read. */
class Tail {
  columns?: Column[];
  private fd?: number;
  private position = 0;
  private partial = '';
  private readonly buf = Buffer.alloc(256 * 1024);
  // a character may straddle two reads
  private readonly decoder = new StringDecoder('utf8');

  constructor(readonly step: ObservedStep) {}

  lines(): string[] {
    if (this.fd === undefined) {
      try {
        this.fd = fs.openSync(this.step.spoolPath, 'r');
      } catch {
        return []; // not created yet
      }
    }
    const out: string[] = [];
    for (let n; (n = fs.readSync(this.fd, this.buf, 0, this.buf.length, this.position)) > 0; ) {
      this.position += n;
      const text = this.partial + this.decoder.write(this.buf.subarray(0, n));
      const parts = text.split('\n');
      this.partial = parts.pop()!;
      out.push(...parts.filter((l) => l !== ''));
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
