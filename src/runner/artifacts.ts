/**
 * Artifacts: every file in --out is named through artifactPath (never outside the
 * folder) and written through AtomicFile (a fresh temp next to it, written fully,
 * fsynced, renamed over the final name). Outputs stream from NDJSON files line by
 * a read's worth of lines at a time: NDJSON copied, JSON as `[` + lines joined by `,`
 * + `]`, CSV through csv-stringify, so a step's events are never one string or one
 * array in memory.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { stringify as stringifyYaml } from 'yaml';
import { flameGraphSvg, foldedText, stackCounts } from './flamegraph.ts';
import { pprofGz, profileRows } from './pprof.ts';
import { formatOf } from './formats.ts';
import type { OutputWriter } from '../steps/types.ts';
import { describeSystemError } from '../system-error.ts';

/** A file could not be written: one line that names it and says what to do. */
export class ArtifactError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ArtifactError';
  }
}

const HINTS: Record<string, string> = {
  ENOSPC: 'free some space or choose another --out',
  EDQUOT: 'the disk quota is used up; free some space or choose another --out',
  EACCES: 'choose an --out folder this user may write',
  EPERM: 'choose an --out folder this user may write',
  EROFS: 'the file system is read-only; choose another --out',
  EEXIST: 'someone else created the temp file first; run again',
  ELOOP: 'a symbolic link was in the way; remove it or choose another --out',
};

function artifactError(what: string, file: string, err: unknown): ArtifactError {
  if (err instanceof ArtifactError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const hint = code && HINTS[code] ? `; ${HINTS[code]}` : '';
  return new ArtifactError(`cannot ${what} ${file}: ${describeSystemError(err)}${hint}`, { cause: err });
}

/**
 * The path of artifact `name` in `outDir`: a plain file name (no separator, no control
 * character, not . or ..) resolved against the real path of the folder, so no recipe,
 * validated or not, and no symlinked parent can place a file anywhere else.
 */
export function artifactPath(outDir: string, name: string): string {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || /[/\\\u0000-\u001f\u007f]/.test(name)) {
    throw new ArtifactError(`output ${JSON.stringify(name)} is not a plain file name: outputs go straight into --out (no folders, no control characters)`);
  }
  let real: string;
  try {
    real = fs.realpathSync(outDir);
  } catch (err) {
    throw artifactError('find the output folder', outDir, err);
  }
  const file = path.resolve(real, name);
  if (path.dirname(file) !== real) throw new ArtifactError(`output ${JSON.stringify(name)} would land outside ${real}`);
  return file;
}

/** A private folder (mode 0700, unpredictable name) inside `parent`, for staging. */
export function makePrivateDir(parent: string, prefix: string): string {
  try {
    fs.mkdirSync(parent, { recursive: true });
    return fs.mkdtempSync(path.join(fs.realpathSync(parent), prefix));
  } catch (err) {
    throw artifactError('create a staging folder in', parent, err);
  }
}

const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/**
 * A file written under a temp name and renamed into place only once all of it is on
 * disk. The temp is created with O_EXCL|O_NOFOLLOW under a random name, so nothing
 * planted in a shared folder (a symlink, a file) is ever opened; rename replaces a
 * symlink at the final name, it does not write through it.
 */
export class AtomicFile {
  private fd: number | undefined;

  private constructor(readonly file: string, readonly tmp: string, fd: number) {
    this.fd = fd;
  }

  static create(file: string): AtomicFile {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
    try {
      return new AtomicFile(file, tmp, fs.openSync(tmp, CREATE_FLAGS, 0o644));
    } catch (err) {
      throw artifactError('create a temp file for', file, err);
    }
  }

  /** Write all of `data`: a short write goes on from where it stopped; a full disk throws. */
  write(data: string | Uint8Array): void {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      for (let off = 0; off < buf.length; ) off += fs.writeSync(this.fd!, buf, off, buf.length - off);
    } catch (err) {
      throw artifactError('write', this.file, err);
    }
  }

  commit(): void {
    try {
      fs.fsyncSync(this.fd!);
      fs.closeSync(this.fd!);
      this.fd = undefined;
      fs.renameSync(this.tmp, this.file);
    } catch (err) {
      this.abort();
      throw artifactError('write', this.file, err);
    }
  }

  abort(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Fill a new AtomicFile and commit it; on any error the temp goes and `file` is untouched. */
export async function writeAtomic(file: string, fill: (out: AtomicFile) => Promise<void> | void): Promise<void> {
  const out = AtomicFile.create(file);
  try {
    await fill(out);
  } catch (err) {
    out.abort();
    throw artifactError('write', file, err);
  }
  out.commit();
}

export function writeTextAtomic(file: string, text: string): Promise<void> {
  return writeAtomic(file, (out) => out.write(text));
}

const READ_BYTES = 1 << 16;

/**
 * The lines of an NDJSON file, a read's worth at a time (blank lines skipped). One
 * buffer is read into again and again: readline over a read stream leaves a 64 KiB
 * Buffer behind per chunk, and that garbage outside the heap was most of the peak RSS
 * of a 1M-event output; batches, not lines, cross the await (a promise per line halved
 * the speed).
 */
export async function* ndjsonBatches(file: string, range?: { start: number; end: number }): AsyncGenerator<string[]> {
  const fh = await fs.promises.open(file, 'r');
  try {
    let buf = Buffer.allocUnsafe(READ_BYTES);
    let kept = 0;
    // a range is one part of a file several were concatenated into (a cluster's merge)
    let at = range?.start ?? 0;
    const stop = range?.end ?? Infinity;
    for (;;) {
      if (kept === buf.length) buf = Buffer.concat([buf, Buffer.allocUnsafe(buf.length)]);
      const { bytesRead } = await fh.read(buf, kept, Math.min(buf.length - kept, stop - at), at);
      at += bytesRead;
      const end = kept + bytesRead;
      // decode only whole lines, so a multi-byte character is never cut in two
      const last = bytesRead === 0 ? end : buf.lastIndexOf(10, end - 1) + 1;
      if (last > 0) {
        const lines = buf.toString('utf8', 0, last).split('\n').filter((l) => l !== '');
        if (lines.length) yield lines;
        buf.copy(buf, 0, last, end);
      }
      kept = end - last;
      if (bytesRead === 0) return;
    }
  } finally {
    await fh.close();
  }
}

/** Copy a file through one reused buffer (see ndjsonLines). */
async function copyInto(out: AtomicFile, from: string): Promise<void> {
  const fh = await fs.promises.open(from, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      out.write(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

/** Events of an NDJSON file as objects (only for what needs them all at once). */
export async function readNdjson(file: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const lines of ndjsonBatches(file)) for (const line of lines) out.push(JSON.parse(line));
  return out;
}

/** A result as a list of records: JSONata gives a lone object for a one-element sequence. */
export function asRecords(result: unknown): unknown[] {
  if (result === undefined || result === null) return [];
  return Array.isArray(result) ? result : [result];
}

/**
 * What a step's result is, as NDJSON on disk: its records one per line, and whether
 * the result was a list, a lone value (JSONata's singleton) or nothing at all.
 */
export interface ResultFile {
  file: string;
  shape: 'list' | 'single' | 'none';
}

/**
 * Write output `file` (its extension picks the format) from a result on disk,
 * streaming; `own`: the step's gadget's formats (its definition's `outputs`).
 */
export async function writeOutput(file: string, from: ResultFile, columns?: string[], own?: Readonly<Record<string, OutputWriter>>): Promise<void> {
  const format = formatOf(file);
  const writer = own && Object.hasOwn(own, format) ? own[format] : undefined;
  if (writer) return writeAtomic(file, async (out) => out.write(writer(await readNdjson(from.file))));
  switch (format) {
    case 'ndjson':
      return writeAtomic(file, (out) => copyInto(out, from.file));
    case 'json':
      return writeAtomic(file, (out) => writeJson(out, from));
    case 'csv':
      return writeAtomic(file, async (out) => writeCsv(out, from.file, columns ?? (await columnsOfFile(from.file))));
    case 'folded':
      return writeAtomic(file, async (out) => out.write(foldedText(stackCounts(await readNdjson(from.file)))));
    case 'svg':
      return writeAtomic(file, async (out) => out.write(flameGraphSvg(stackCounts(await readNdjson(from.file)), path.basename(file, '.svg'))));
    case 'pb.gz':
      return writeAtomic(file, async (out) => out.write(pprofGz(profileRows(await readNdjson(from.file)))));
    case 'yaml':
      return writeAtomic(file, (out) => writeYaml(out, from));
    default:
      throw new ArtifactError(`output ${path.basename(file)}: unknown format (write .ndjson, .json, .csv, .yaml, .folded / .svg / .pb.gz (pprof) for rows with stack and count${Object.keys(own ?? {}).map((f) => `, .${f}`).join('')})`);
  }
}

/**
 * Multi-document YAML: each record one document (kubectl apply -f takes the
 * file as it is), a lone value one document, nothing an empty file. Key order
 * is the records' own, so a generator's deterministic order is the file's.
 */
async function writeYaml(out: AtomicFile, from: ResultFile): Promise<void> {
  for await (const lines of ndjsonBatches(from.file)) {
    for (const line of lines) out.write('---\n' + stringifyYaml(JSON.parse(line), { lineWidth: 0 }));
  }
}

async function writeJson(out: AtomicFile, from: ResultFile): Promise<void> {
  if (from.shape !== 'list') {
    let single: unknown = null;
    if (from.shape === 'single') for await (const lines of ndjsonBatches(from.file)) single = JSON.parse(lines[lines.length - 1]);
    out.write(JSON.stringify(single, null, 2) + '\n');
    return;
  }
  let first = true;
  for await (const lines of ndjsonBatches(from.file)) {
    out.write((first ? '[\n' : ',\n') + lines.join(',\n'));
    first = false;
  }
  out.write(first ? '[]\n' : '\n]\n');
}

const asRow = (r: unknown) => (r !== null && typeof r === 'object' && !Array.isArray(r) ? (r as Record<string, unknown>) : { value: r });

async function writeCsv(out: AtomicFile, from: string, columns: string[]): Promise<void> {
  const options = {
    columns: columns.length ? columns : ['value'],
    cast: {
      boolean: (v: boolean) => (v ? 'true' : 'false'),
      // arrays (exec args) read best space-joined, as in Inspektor Gadget's columns; NDJSON keeps them exact
      object: (v: object) => (Array.isArray(v) ? v.join(' ') : JSON.stringify(v)),
    },
  };
  // a read's worth of records at a time through csv-stringify's synchronous API: as
  // bounded as its stream, without a drain to await every few records
  out.write(stringify([], { ...options, header: true }));
  for await (const lines of ndjsonBatches(from)) out.write(stringify(lines.map((l) => asRow(JSON.parse(l))), options));
}

/** Keys in order of first appearance (a first pass over the file), so columns are stable run to run. */
async function columnsOfFile(file: string): Promise<string[]> {
  const cols = new Set<string>();
  for await (const lines of ndjsonBatches(file)) for (const line of lines) for (const k of Object.keys(asRow(JSON.parse(line)))) cols.add(k);
  return cols.size ? [...cols] : ['value'];
}
