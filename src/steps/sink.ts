import fs from 'node:fs';
import type { ByteWriter, Codec } from './codec.ts';
import type { EventSink, StepContext } from './types.ts';

const CHUNK_BYTES = 1 << 20;

/**
 * Buffered NDJSON file: codecs write lines as bytes straight into `chunk`
 * (see ByteWriter), which goes to the file when it is full and once per drain.
 * It holds at most `maxBytes`: a line that would cross it is taken back, and
 * every event from then on is counted in `truncated` instead of written, so a
 * node-wide trace cannot fill the disk (the runner fails such a step).
 */
export class LineSink implements ByteWriter, EventSink {
  chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  used = 0;
  /** events not written because the file reached maxBytes */
  truncated = 0;
  private flushed = 0;
  private readonly fd: number;

  /** `tee` sees each flushed stretch of whole lines before it is written (a trigger's reader: src/runner/triggers.ts) */
  constructor(readonly path: string, private readonly maxBytes = Number.MAX_SAFE_INTEGER, private readonly tee?: (lines: Buffer) => void) {
    this.fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  }

  /** write one record's line through the codec; true when it passed the filter and was written */
  append(codec: Codec, offset: number, length: number): boolean {
    if (this.truncated) {
      // the filter still decides what counts as a truncated event
      const spare = (this.spare ??= { chunk: Buffer.allocUnsafe(codec.maxLineBytes), used: 0 });
      if (spare.chunk.length < codec.maxLineBytes) spare.chunk = Buffer.allocUnsafe(codec.maxLineBytes);
      spare.used = 0;
      if (codec.write(offset, length, spare)) this.truncated++;
      return false;
    }
    this.reserve(codec.maxLineBytes);
    const before = this.used;
    if (!codec.write(offset, length, this)) return false;
    if (this.flushed + this.used <= this.maxBytes) return true;
    this.used = before;
    this.truncated = 1;
    return false;
  }
  private spare?: ByteWriter;
  private closed = false;

  /** make room for `bytes` more */
  reserve(bytes: number): void {
    if (this.used + bytes <= this.chunk.length) return;
    this.flush();
    if (bytes > this.chunk.length) this.chunk = Buffer.allocUnsafe(bytes);
  }

  flush(): void {
    if (this.tee && this.used) this.tee(this.chunk.subarray(0, this.used));
    let off = 0;
    while (off < this.used) off += fs.writeSync(this.fd, this.chunk, off, this.used - off);
    this.flushed += this.used;
    this.used = 0;
  }

  close(): void {
    // a sink the runner made is closed by the session, and again by the runner when the open failed
    if (this.closed) return;
    this.closed = true;
    try {
      this.flush();
    } finally {
      fs.closeSync(this.fd);
    }
  }
}

/**
 * A spool that keeps nothing until it is opened, then only the lines `pass`
 * accepts: a triggered step loaded and attached before its trigger
 * (`attach: preload`, src/runner/triggers.ts) writes from the trigger on.
 */
export class GateSink extends LineSink {
  private pass?: (line: Record<string, unknown>) => boolean;

  open(pass: (line: Record<string, unknown>) => boolean): void {
    this.pass = pass;
  }

  override append(codec: Codec, offset: number, length: number): boolean {
    // room first, so the line written lands at `before` (a flush inside append would move it)
    this.reserve(codec.maxLineBytes);
    const before = this.used;
    if (!super.append(codec, offset, length)) return false;
    if (this.pass?.(JSON.parse(this.chunk.toString('utf8', before, this.used)) as Record<string, unknown>)) return true;
    this.used = before;
    return false;
  }
}

/** Where a live mode's events go: the consumer the context names, else a spool of at most maxBytes. */
export function sinkFor(ctx: StepContext): EventSink {
  if (ctx.sink) return ctx.sink;
  if (ctx.spoolPath === undefined) throw new Error(`${ctx.id}: neither a spool nor a sink for its events`);
  return new LineSink(ctx.spoolPath, ctx.maxBytes);
}
