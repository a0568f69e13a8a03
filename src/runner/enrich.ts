/**
 * The enrich stage: raw events as captured (DIR/raw/<step>.ndjson) become the
 * events evaluation reads. One rule, for a local run and a cluster's merge alike:
 *   - an event from a container its step resolved out is dropped (its events
 *     reached the ring before the container was resolved);
 *   - an event gains its container's fields, looked up by its cgroup_id in the
 *     container table of the node that captured it;
 *   - an event of a cluster run gains `node`, the node whose part of the merge
 *     it came from (StepMeta.parts).
 * A field the stage adds replaces one of the same name in the event.
 *
 * It runs once, where evaluation reads raw/ (evaluate.ts), never on the capture
 * path nor on the agent: tracing costs the same with and without it, an agent
 * uploads its raw files as captured (no rewrite pass on the node), and the
 * CLI's merge is a plain concatenation that records which bytes came from which
 * node. Evaluation copies the events into its work folder anyway; this is that copy.
 *
 * Lines are spliced, not parsed and re-serialised: JSON.parse would round u64
 * fields past 2^53 (timestamps in ns, inode numbers) and cost a parse and a
 * stringify per event. The splice works on the top-level members found by a
 * small scanner (topMembers), so a `cgroup_id` inside a string or a nested
 * object is never taken for the event's own (test/runner/enrich.test.ts checks
 * it against JSON.parse over arbitrary lines).
 */
import fs from 'node:fs';
import { containerColumns, containerFields, containerLookup, rejectedLookup, type ContainerTable } from '../containers/table.ts';
import { AtomicFile, ndjsonBatches } from './artifacts.ts';

/** The bytes of a merged raw file that one node's raw file became, in order (mergeRaw). */
export interface RawPart {
  node: string;
  bytes: number;
  events: number;
}

export class EnrichError extends Error {}

interface Member {
  /** the key, decoded only when it has escapes (a string per key per event was most of the scan's time) */
  key?: string;
  /** past the key's closing quote */
  keyEnd: number;
  /** the key's opening quote */
  start: number;
  /** past the value's last character */
  end: number;
  valueStart: number;
}

const QUOTE = 34;
const BACKSLASH = 92;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;

/** Past the closing quote of the string whose opening quote is at `at`. */
function stringEnd(line: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const q = line.indexOf('"', i);
    if (q < 0) throw new EnrichError('an unterminated string');
    // an escaped quote is preceded by an odd run of backslashes
    let b = q - 1;
    while (b > at && line.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    i = q + 1;
  }
}

/** Past the value (of any kind) that starts at `at`. */
function valueEnd(line: string, at: number): number {
  const c = line.charCodeAt(at);
  if (c === QUOTE) return stringEnd(line, at);
  if (c === 123 || c === 91) {
    let depth = 0;
    for (let i = at; i < line.length; ) {
      const d = line.charCodeAt(i);
      if (d === QUOTE) {
        i = stringEnd(line, i);
        continue;
      }
      if (d === 123 || d === 91) depth++;
      else if (d === 125 || d === 93) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    throw new EnrichError('an unclosed object or array');
  }
  let i = at;
  while (i < line.length) {
    const d = line.charCodeAt(i);
    if (d === 44 || d === 125 || d === 93 || isSpace(d)) break;
    i++;
  }
  if (i === at) throw new EnrichError(`a value expected at column ${at + 1}`);
  return i;
}

function skipSpace(line: string, i: number): number {
  while (i < line.length && isSpace(line.charCodeAt(i))) i++;
  return i;
}

/** The line's top-level members and the position of its closing brace; throws when it is not one JSON object. */
export function topMembers(line: string): { members: Member[]; close: number } {
  let i = skipSpace(line, 0);
  if (line.charCodeAt(i) !== 123) throw new EnrichError('not a JSON object');
  const members: Member[] = [];
  i = skipSpace(line, i + 1);
  if (line.charCodeAt(i) === 125) {
    if (skipSpace(line, i + 1) !== line.length) throw new EnrichError('text after the object');
    return { members, close: i };
  }
  for (;;) {
    if (line.charCodeAt(i) !== QUOTE) throw new EnrichError(`a key expected at column ${i + 1}`);
    const start = i;
    const keyEnd = stringEnd(line, i);
    let escaped = false;
    for (let k = start + 1; k < keyEnd - 1 && !escaped; k++) escaped = line.charCodeAt(k) === BACKSLASH;
    i = skipSpace(line, keyEnd);
    if (line.charCodeAt(i) !== 58) throw new EnrichError(`":" expected at column ${i + 1}`);
    const valueStart = skipSpace(line, i + 1);
    const end = valueEnd(line, valueStart);
    members.push(escaped ? { key: JSON.parse(line.slice(start, keyEnd)) as string, keyEnd, start, end, valueStart } : { keyEnd, start, end, valueStart });
    i = skipSpace(line, end);
    const c = line.charCodeAt(i);
    if (c === 44) {
      i = skipSpace(line, i + 1);
      continue;
    }
    if (c !== 125) throw new EnrichError(`"," or "}" expected at column ${i + 1}`);
    if (skipSpace(line, i + 1) !== line.length) throw new EnrichError('text after the object');
    return { members, close: i };
  }
}

/** Whether a member's key is `key`. */
export function isKey(line: string, m: Member, key: string): boolean {
  if (m.key !== undefined) return m.key === key;
  return m.keyEnd - m.start === key.length + 2 && line.startsWith(key, m.start + 1);
}

/** A member's key as a string. */
export function keyOf(line: string, m: Member): string {
  return m.key ?? line.slice(m.start + 1, m.keyEnd - 1);
}

/** An event's cgroup id as the table keys it (decimal digits), from a number or a string value. */
function cgroupIdOf(line: string, m: Member | undefined): string | undefined {
  if (!m) return undefined;
  const text = line.slice(m.valueStart, m.end);
  if (/^\d+$/.test(text)) return text;
  if (text.charCodeAt(0) === QUOTE) return JSON.parse(text) as string;
  return undefined;
}

/**
 * The rule for one line: the enriched line, or null when the event is dropped.
 * `node`: the node that captured it (a cluster's part), none for a local run.
 */
export type LineEnricher = (line: string, node: string | undefined) => string | null;

/** What an event of one container (or none) on one node gains: its members' text and their keys. */
interface Addition {
  text: string;
  keys: Set<string>;
}

export function lineEnricher(table: ContainerTable | undefined, step: string): LineEnricher {
  const fields = containerLookup(table, containerFields);
  const rejected = rejectedLookup(table, step);
  const hasRows = !!table?.containers.length;
  // built once per container and node, not per event (a stringify per event was most of the stage's time)
  const additions = new Map<string, Addition | null>();
  const additionOf = (id: string | undefined, node: string | undefined): Addition | null => {
    const key = `${node ?? ''}\u0000${id ?? ''}`;
    let a = additions.get(key);
    if (a === undefined) {
      const container = id === undefined ? undefined : fields.get(id, node);
      const add: Record<string, unknown> = { ...container, ...(node !== undefined ? { node } : {}) };
      a = Object.keys(add).length ? { text: JSON.stringify(add).slice(1, -1), keys: new Set(Object.keys(add)) } : null;
      additions.set(key, a);
    }
    return a;
  };
  return (line, node) => {
    const { members, close } = topMembers(line);
    const id = hasRows ? cgroupIdOf(line, members.find((m) => isKey(line, m, 'cgroup_id'))) : undefined;
    if (id !== undefined && rejected.has(id, node)) return null;
    const add = additionOf(id, node);
    if (!add) return line;
    if (!members.some((m) => add.keys.has(keyOf(line, m)))) return `${line.slice(0, close)}${members.length ? ',' : ''}${add.text}${line.slice(close)}`;
    const kept = members.filter((m) => !add.keys.has(keyOf(line, m))).map((m) => line.slice(m.start, m.end));
    return `{${[...kept, add.text].join(',')}}`;
  };
}

/** Whether a step's raw events need the stage: a table to join them with, or a node to name. */
export function needsEnrich(table: ContainerTable | undefined, fields: string[], parts: RawPart[] | undefined): boolean {
  return !!parts?.length || (!!table?.containers.length && fields.includes('cgroup_id'));
}

/**
 * The stage over a step's raw file, streamed into `out` (written atomically).
 * `parts`: the nodes the file was merged from, in order; none for a local run.
 * Returns the events written and the columns they gained (for CSV).
 */
export async function enrichRaw(raw: string, out: string, table: ContainerTable | undefined, step: string, parts?: RawPart[]): Promise<{ events: number; columns: string[] }> {
  const size = fs.statSync(raw).size;
  const ranges: { node?: string; start: number; end: number }[] = [];
  if (parts?.length) {
    let at = 0;
    for (const p of parts) ranges.push({ node: p.node, start: at, end: (at += p.bytes) });
    if (at !== size) throw new EnrichError(`${raw}: ${size} bytes, but the nodes merged into it (its meta's parts) add up to ${at}: it was changed after the merge; merge the nodes' folders again (run --cluster) or remove "parts" to read it as one node's`);
  } else ranges.push({ start: 0, end: size });
  const enrich = lineEnricher(table, step);
  const file = AtomicFile.create(out);
  let events = 0;
  let lineNo = 0;
  try {
    for (const { node, start, end } of ranges) {
      for await (const lines of ndjsonBatches(raw, { start, end })) {
        let chunk = '';
        for (const line of lines) {
          lineNo++;
          let got: string | null;
          try {
            got = enrich(line, node);
          } catch (err) {
            if (!(err instanceof EnrichError)) throw err;
            throw new EnrichError(`${raw}: event ${lineNo}${node !== undefined ? ` (node ${node})` : ''}: ${err.message} — raw/ holds one JSON object per line as capture wrote it`, { cause: err });
          }
          if (got === null) continue;
          chunk += got + '\n';
          events++;
        }
        file.write(chunk);
      }
    }
  } catch (err) {
    file.abort();
    throw err;
  }
  file.commit();
  const columns = table ? containerColumns(table) : [];
  return { events, columns: parts?.length && !columns.includes('node') ? [...columns, 'node'] : columns };
}
