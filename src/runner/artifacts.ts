/**
 * Artifacts, written atomically (temp file in the same folder, then rename):
 * NDJSON (one event per line), JSON (one document), CSV (csv-stringify,
 * header row, stable column order).
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { stringify } from 'csv-stringify';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

export type Format = 'ndjson' | 'json' | 'csv';

export function formatOf(file: string): Format {
  return path.extname(file).slice(1) as Format;
}

function tempFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
}

/** Write through `fill` into a temp file, then rename it over `file`. */
export async function writeAtomic(file: string, fill: (tmp: string) => Promise<void> | void): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempFor(file);
  try {
    await fill(tmp);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function writeTextAtomic(file: string, text: string): Promise<void> {
  return writeAtomic(file, (tmp) => {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** The spool of raw events is already NDJSON: copy it into place. */
export function copyAtomic(from: string, file: string): Promise<void> {
  return writeAtomic(file, (tmp) => fs.copyFileSync(from, tmp));
}

/** Events of a spool as objects, line by line. */
export async function readNdjson(file: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) if (line) out.push(JSON.parse(line));
  return out;
}

/** A result as a list of records: JSONata gives a lone object for a one-element sequence. */
export function asRecords(result: unknown): unknown[] {
  if (result === undefined || result === null) return [];
  return Array.isArray(result) ? result : [result];
}

export async function writeResult(file: string, result: unknown, columns?: string[]): Promise<void> {
  switch (formatOf(file)) {
    case 'json':
      return writeTextAtomic(file, JSON.stringify(result ?? null, null, 2) + '\n');
    case 'ndjson':
      return writeAtomic(file, (tmp) => pipeline(Readable.from(ndjsonLines(asRecords(result))), fs.createWriteStream(tmp)));
    case 'csv':
      return writeCsv(file, asRecords(result), columns);
  }
}

function* ndjsonLines(records: unknown[]): Generator<string> {
  for (const r of records) yield JSON.stringify(r) + '\n';
}

async function writeCsv(file: string, records: unknown[], columns?: string[]): Promise<void> {
  const objects = records.map((r) => (r !== null && typeof r === 'object' && !Array.isArray(r) ? (r as Record<string, unknown>) : { value: r }));
  const cols = columns ?? columnsOf(objects);
  await writeAtomic(file, (tmp) =>
    pipeline(
      Readable.from(objects),
      stringify({
        header: true,
        columns: cols,
        cast: {
          boolean: (v) => (v ? 'true' : 'false'),
          // arrays (exec args) read best space-joined, as in Inspektor Gadget's columns; NDJSON keeps them exact
          object: (v) => (Array.isArray(v) ? v.join(' ') : JSON.stringify(v)),
        },
      }),
      fs.createWriteStream(tmp),
    ),
  );
}

/** Keys in order of first appearance, so the columns are stable from run to run. */
function columnsOf(objects: Record<string, unknown>[]): string[] {
  const cols = new Set<string>();
  for (const o of objects) for (const k of Object.keys(o)) cols.add(k);
  return cols.size ? [...cols] : ['value'];
}
