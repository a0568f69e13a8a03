/**
 * A node's results through the API server: the agent packs its output folder
 * (raw/, summary.json, the node's own artifacts), gzips it, and cuts it into
 * ConfigMaps small enough for etcd (binaryData, CHUNK_BYTES each), owned by the
 * GadgetRun so that deleting the run deletes them. Chunk 0 is the node's result
 * object: it also holds the node's full answer (data result.json, a NodeReport)
 * and the chunk count, and is written last, so once it exists every chunk does.
 * Each node writes its own objects: nothing here contends with another node.
 * The CLI lists them by label a page at a time, writes each chunk to disk and
 * unpacks the joined stream into DIR/<node>/.
 * Everything streams: the agent reads a file a block at a time and uploads a
 * chunk as soon as it is full; the CLI never holds more than a page of chunks.
 * Pack format: records `<relative path>\0<size>\n<bytes>`, each block gzipped
 * on its own (a gzip stream may be several members); a path's later records
 * append to its first, so a raw file goes in blocks of whole events. Paths are
 * checked on unpack so a chunk cannot write outside the node's folder.
 * A node puts at most cluster.max_result_bytes (compressed) into the API
 * server: past it its events are cut at an event boundary and the steps cut
 * say `truncated`, with the reason, in the meta the CLI merges.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { formatBytes } from '../steps/duration.ts';
import type { StepMeta } from '../runner/capture.ts';
import { apiMessage, reasonOf, statusOf, withRetry, type Api, type RetryOptions } from './client.ts';
import { API_VERSION, KIND, NAMESPACE, type GadgetRun, type NodeReport } from './crd.ts';
import { dnsSubdomain } from '../util/k8s-names.ts';
import { eachLimit } from '../util/each-limit.ts';
import type { ServedResult } from './serve.ts';

/** ConfigMaps hold at most 1 MiB; base64 in etcd adds a third: stay well under both. */
export const CHUNK_BYTES = 512 * 1024;
/** cluster.max_result_bytes when the recipe has none: 16 MiB compressed is ~150 MB of events per node */
export const DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024;
export const RUN_LABEL = 'gadget-run.dev/run';
export const NODE_LABEL = 'gadget-run.dev/node';
const NODE_ANNOTATION = 'gadget-run.dev/node';
/** `i`, and on chunk 0 `0/<chunks>` (known only once the pack is done, and chunk 0 goes last) */
const INDEX_ANNOTATION = 'gadget-run.dev/chunk';
export const REPORT_KEY = 'result.json';
/** uncompressed bytes read and gzipped at a time */
const BLOCK_BYTES = 256 * 1024;
/** room for a record's header: a path of the node's folder and a size */
const HEAD_ROOM = 4096;
/** how many chunks the CLI asks for per list request (each ~700 KB of base64) */
const PAGE_CHUNKS = 4;
/**
 * Nodes whose results the CLI fetches and unpacks at once (--fetch-concurrency): a served result
 * is one port-forward (a WebSocket through the API server to the node's kubelet) and a gunzip.
 * 8 keeps the CLI's two tasks (network waits, gunzip on a core) busy without opening hundreds of
 * streams through the API server at the end of a big run; each one's memory is a stream's buffers.
 */
export const DEFAULT_FETCH_CONCURRENCY = 8;

export function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    // staging folders of a run that was stopped (.capture-*, .evaluate-*) are not results
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

/** A step whose events did not all fit under the cap. */
export interface StepCut {
  step: string;
  /** events uploaded, and those left out */
  kept: number;
  dropped: number;
}

export interface PackOutcome {
  /** compressed bytes */
  bytes: number;
  cut: StepCut[];
  /** files of the node's own (artifacts) left out whole because they did not fit */
  skipped: string[];
}

const record = (rel: string, size: number) => {
  const head = Buffer.from(`${rel}\0${size}\n`);
  if (head.length > HEAD_ROOM) throw new Error(`results: the path ${JSON.stringify(rel.slice(0, 80))}… is too long to pack (${head.length} bytes)`);
  return head;
};
/** a block's gzip member can never be larger than this (deflate's stored blocks, the member's header and trailer) */
const bound = (n: number) => n + (n >> 10) + 64;

/** The reason a cut step's meta carries: what was cut, why, and what to do. */
export function cutReason(cut: StepCut, maxBytes: number): string {
  return `the node's result reached cluster.max_result_bytes (${formatBytes(maxBytes)} compressed in the API server): ${cut.dropped} of ${cut.kept + cut.dropped} events were not uploaded — narrow the step's filters or containers, shorten the run, or raise cluster.max_result_bytes`;
}

/**
 * Packs `dir` into gzip members handed to `write` in order, never more than
 * `maxBytes` in all. Events first (the smallest step's first), each raw file
 * in blocks of whole events while they fit, then the raw folder's other files (the metas say which
 * steps were cut), then the node's other files whole while they fit.
 */
export async function pack(dir: string, write: (member: Buffer) => Promise<void> | void, maxBytes = DEFAULT_MAX_RESULT_BYTES): Promise<PackOutcome> {
  const files = listFiles(dir);
  // the smallest steps first: under the cap, as many steps as can be stay whole and the largest is cut
  const sizeOf = (f: string) => fs.statSync(path.join(dir, f)).size;
  const events = files.filter((f) => /^raw\/[^/]+\.ndjson$/.test(f)).sort((a, b) => sizeOf(a) - sizeOf(b));
  const rawOther = files.filter((f) => f.startsWith('raw/') && !events.includes(f));
  const rest = files.filter((f) => !f.startsWith('raw/'));
  const metas = rawOther.filter((f) => f.endsWith('.meta.json'));
  // the raw folder's other files must fit after the events, with room for the cut steps' reasons
  const reserve = rawOther.reduce((n, f) => n + bound(fs.statSync(path.join(dir, f)).size + f.length + 24), 0) + metas.length * 1024;
  if (reserve > maxBytes) throw new Error(`the node's metas and container table alone are ${formatBytes(reserve)}, more than cluster.max_result_bytes (${formatBytes(maxBytes)}): raise cluster.max_result_bytes`);
  let bytes = 0;
  const put = async (member: Buffer) => {
    bytes += member.length;
    await write(member);
  };
  const cut: StepCut[] = [];
  for (const rel of events) {
    const kept = await packEvents(path.join(dir, rel), rel, maxBytes - reserve - bytes, put);
    if (kept.dropped) cut.push({ step: path.basename(rel, '.ndjson'), ...kept });
  }
  for (const rel of rawOther) {
    let data = fs.readFileSync(path.join(dir, rel));
    const c = cut.find((x) => rel === `raw/${x.step}.meta.json`);
    if (c) data = Buffer.from(JSON.stringify(cutMeta(JSON.parse(data.toString('utf8')) as StepMeta, c, maxBytes), null, 2) + '\n');
    await put(zlib.gzipSync(Buffer.concat([record(rel, data.length), data])));
  }
  const skipped: string[] = [];
  for (const rel of rest) {
    const size = fs.statSync(path.join(dir, rel)).size;
    if (bytes + bound(size + rel.length + 24) > maxBytes) {
      skipped.push(rel);
      continue;
    }
    // the node's artifacts may be as large as its events: read in blocks, not whole
    await packEvents(path.join(dir, rel), rel, Infinity, put, false);
  }
  return { bytes, cut, skipped };
}

/** A cut step's meta: `truncated`, the events that are there, and why. */
function cutMeta(meta: StepMeta, c: StepCut, maxBytes: number): StepMeta {
  const reason = cutReason(c, maxBytes);
  return { ...meta, status: meta.status === 'ok' ? 'truncated' : meta.status, events: c.kept, truncated: (meta.truncated ?? 0) + c.dropped, reason: meta.reason ? `${meta.reason}; ${reason}` : reason };
}

/**
 * One file as records of whole lines (whole events), each block a gzip member,
 * while they fit in `room` compressed bytes; `lines` false: any bytes (a whole file that fits).
 * Returns the events packed and those left out.
 */
async function packEvents(file: string, rel: string, room: number, put: (m: Buffer) => Promise<void>, lines = true): Promise<{ kept: number; dropped: number }> {
  const fh = await fs.promises.open(file, 'r');
  let kept = 0;
  let used = 0;
  try {
    const size = (await fh.stat()).size;
    // an empty file is still a file of the result
    if (size === 0) await put(zlib.gzipSync(record(rel, 0)));
    // the record's header goes in front of the block in the same buffer: no copy per block
    let whole = Buffer.allocUnsafe(HEAD_ROOM + BLOCK_BYTES);
    let buf = whole.subarray(HEAD_ROOM);
    let at = 0;
    let want = BLOCK_BYTES;
    while (at < size) {
      want = Math.min(want, size - at);
      if (buf.length < want) {
        whole = Buffer.allocUnsafe(HEAD_ROOM + want);
        buf = whole.subarray(HEAD_ROOM);
      }
      const { bytesRead } = await fh.read(buf, 0, want, at);
      let n = lines ? buf.lastIndexOf(10, bytesRead - 1) + 1 : bytesRead;
      // a last line without its newline is an event too
      if (lines && n === 0 && at + bytesRead === size) n = bytesRead;
      if (n === 0) {
        // one event longer than the block: read it whole
        want *= 2;
        continue;
      }
      const head = record(rel, n);
      head.copy(whole, HEAD_ROOM - head.length);
      const member = zlib.gzipSync(whole.subarray(HEAD_ROOM - head.length, HEAD_ROOM + n));
      if (used + member.length > room) {
        // the block does not fit: a smaller one may; under one event, the file is cut here
        if (!lines) break;
        const nl = buf.indexOf(10);
        const firstEvent = nl >= 0 && nl < n ? nl + 1 : n;
        if (firstEvent >= n) break;
        want = Math.max(firstEvent, n >> 1);
        continue;
      }
      await put(member);
      used += member.length;
      // a block ends with its last event's newline, or it is the file's unterminated last event
      kept += newlines(buf, n) + (buf[n - 1] === 10 ? 0 : 1);
      at += n;
      want = BLOCK_BYTES;
    }
    if (at >= size) return { kept, dropped: 0 };
    // count the events left out without holding them
    let dropped = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - at), at);
      dropped += newlines(buf, bytesRead);
      at += bytesRead;
      if (at === size && buf[bytesRead - 1] !== 10) dropped++;
    }
    return { kept, dropped };
  } finally {
    await fh.close();
  }
}

function newlines(buf: Buffer, n: number): number {
  let count = 0;
  for (let i = buf.indexOf(10); i >= 0 && i < n; i = buf.indexOf(10, i + 1)) count++;
  return count;
}

/**
 * Unpacks a pack read from `from` (the joined chunks) into `dir`, streamed:
 * a record's bytes go to its file as they are decompressed. Returns the files.
 */
export async function unpack(from: NodeJS.ReadableStream, dir: string): Promise<string[]> {
  const root = path.resolve(dir);
  const files: string[] = [];
  const seen = new Set<string>();
  let head: Buffer = Buffer.alloc(0);
  let left = 0;
  let out: fs.WriteStream | undefined;
  const finishFile = async () => {
    if (!out) return;
    const s = out;
    out = undefined;
    await new Promise<void>((resolve, reject) => s.end((err?: Error | null) => (err ? reject(err) : resolve())));
  };
  const gunzip = zlib.createGunzip({ chunkSize: 1 << 16 });
  from.pipe(gunzip);
  from.on('error', (err) => gunzip.destroy(err as Error));
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    let data = chunk;
    while (data.length) {
      if (out) {
        const n = Math.min(left, data.length);
        if (!out.write(data.subarray(0, n))) await once(out, 'drain');
        left -= n;
        data = data.subarray(n);
        if (left === 0) await finishFile();
        continue;
      }
      head = head.length ? Buffer.concat([head, data]) : data;
      data = Buffer.alloc(0);
      const nul = head.indexOf(0);
      const nl = nul < 0 ? -1 : head.indexOf(10, nul);
      if (nl < 0) {
        if (head.length > 8192) throw new Error('results: a record header longer than any path (not a pack)');
        break;
      }
      const rel = head.toString('utf8', 0, nul);
      const size = Number(head.toString('utf8', nul + 1, nl));
      const target = path.resolve(root, rel);
      if (!target.startsWith(root + path.sep) || !Number.isSafeInteger(size) || size < 0) throw new Error(`results: refusing the entry ${JSON.stringify(rel)}`);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      // a path's later records append to its first
      // a deep write queue: waiting for a drain every 16 KiB (the default) was most of the unpack's time
      out = fs.createWriteStream(target, { flags: seen.has(rel) ? 'a' : 'w', highWaterMark: 1 << 20 });
      if (!seen.has(rel)) files.push(rel);
      seen.add(rel);
      left = size;
      data = head.subarray(nl + 1);
      head = Buffer.alloc(0);
      if (left === 0) await finishFile();
    }
  }
  if (out || head.length) {
    await finishFile();
    throw new Error('results: a truncated pack (the chunks do not join up)');
  }
  return files;
}

/** Label values are ≤ 63 characters; node names may be longer. */
export function nodeKey(node: string): string {
  return node.length <= 63 ? node : createHash('sha256').update(node).digest('hex').slice(0, 63);
}

function chunkName(run: string, node: string, i: number): string {
  return `${dnsSubdomain(`${run}-${nodeKey(node)}`, 'results', 240)}-${i}`;
}

/** What a node's upload wrote: ConfigMaps and compressed bytes, and what did not fit. */
export interface Written extends PackOutcome {
  chunks: number;
  /** sha256 of the packed bytes the CLI gets (joined chunks, or the served file) */
  sha256: string;
  /** the result was above the inline limit: where the agent serves it (serve.ts) */
  served?: ServedResult;
}

/** Big results (above inlineLimit) go to serve() rather than into ConfigMaps (serve.ts). */
export interface ServeChoice {
  /** packed bytes above this are served, not stored (cluster.inline_limit; default 1 MiB) */
  inlineLimit: number;
  /** where packs are staged before the choice */
  workDir: string;
  /** starts serving the file (it then owns it); undefined: this agent cannot serve (no pod), the result goes inline */
  serve: (file: string, bytes: number, sha256: string) => Promise<ServedResult | undefined>;
}

/** cluster.inline_limit when neither the recipe nor the CLI gives one */
export const DEFAULT_INLINE_LIMIT = 1024 * 1024;

/**
 * Writes the node's results (dir: its output folder; none when the run never
 * produced one), streamed: each chunk is created as soon as it is full, chunk 0
 * (kept back) last with the report, made once the chunk count is known.
 * With `choice`, the pack is staged on disk first: above the inline limit it is
 * served (chunk 0 holds the report alone, saying where), at or under it, it is
 * uploaded from the staged file.
 */
export async function uploadResults(
  api: Api,
  run: GadgetRun,
  node: string,
  dir: string | undefined,
  report: (written: Written) => NodeReport,
  retry?: RetryOptions,
  maxBytes = DEFAULT_MAX_RESULT_BYTES,
  choice?: ServeChoice,
): Promise<Written> {
  const create = async (body: V1ConfigMap) => {
    try {
      await withRetry(api, 'create configmaps', () => api.core.createNamespacedConfigMap({ namespace: body.metadata!.namespace!, body }), retry);
    } catch (err) {
      // a retried create whose first attempt landed after all: the name is this node's own
      if (!(statusOf(err) === 409 && reasonOf(err) === 'AlreadyExists')) throw err;
    }
  };
  const chunker = new Chunker((i, data) => create(resultObject(run, node, i, undefined, data)));
  let packed: PackOutcome = { bytes: 0, cut: [], skipped: [] };
  let served: ServedResult | undefined;
  if (dir && choice) {
    const staged = await stage(dir, choice.workDir);
    let owned = false;
    try {
      if (staged.packed.bytes > choice.inlineLimit) {
        served = await choice.serve(staged.file, staged.packed.bytes, staged.sha256);
        owned = !!served;
      }
      if (served) {
        packed = staged.packed;
      } else if (staged.packed.bytes <= maxBytes) {
        packed = staged.packed;
        await chunkFile(staged.file, chunker);
      }
    } finally {
      if (!owned) fs.rmSync(staged.file, { force: true });
    }
    // neither served nor under the cap: packed again, cut at the cap, as without a choice
    if (!served && staged.packed.bytes > maxBytes) packed = await pack(dir, (m) => chunker.add(m), maxBytes);
  } else if (dir) {
    packed = await pack(dir, (m) => chunker.add(m), maxBytes);
  }
  const first = await chunker.end();
  const written: Written = { ...packed, chunks: dir && !served ? chunker.count : 0, sha256: served ? served.sha256 : chunker.sha256(), ...(served ? { served } : {}) };
  // chunk 0 last: its presence means the node's upload is whole
  await create(resultObject(run, node, 0, written.chunks, served ? undefined : first, report(written)));
  return written;
}

/** The whole pack of dir in a file of workDir, its size and sha256. */
async function stage(dir: string, workDir: string): Promise<{ file: string; packed: PackOutcome; sha256: string }> {
  const file = path.join(workDir, `.result-${process.pid}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.gz`);
  const out = fs.createWriteStream(file, { mode: 0o600 });
  const hash = createHash('sha256');
  try {
    const packed = await pack(dir, async (m) => {
      hash.update(m);
      if (!out.write(m)) await once(out, 'drain');
    }, Infinity);
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    return { file, packed, sha256: hash.digest('hex') };
  } catch (err) {
    out.destroy();
    fs.rmSync(file, { force: true });
    throw err;
  }
}

async function chunkFile(file: string, chunker: Chunker): Promise<void> {
  for await (const piece of fs.createReadStream(file, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>) await chunker.add(piece);
}

/** Cuts a byte stream into CHUNK_BYTES pieces; hands on pieces 1.. as they fill and keeps piece 0. */
class Chunker {
  count = 0;
  private first?: Buffer;
  private current = Buffer.allocUnsafe(CHUNK_BYTES);
  private fill = 0;
  private readonly hash = createHash('sha256');

  constructor(private readonly send: (i: number, data: Buffer) => Promise<void>) {}

  sha256(): string {
    return this.hash.copy().digest('hex');
  }

  async add(data: Buffer): Promise<void> {
    this.hash.update(data);
    for (let at = 0; at < data.length; ) {
      const n = data.copy(this.current, this.fill, at);
      this.fill += n;
      at += n;
      if (this.fill === CHUNK_BYTES) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    const piece = this.current.subarray(0, this.fill);
    const i = this.count++;
    if (i === 0) {
      this.first = Buffer.from(piece);
    } else {
      await this.send(i, piece);
    }
    this.fill = 0;
  }

  /** The last piece is sent; piece 0 (empty when nothing was added) is returned. */
  async end(): Promise<Buffer> {
    if (this.fill || this.count === 0) await this.flush();
    return this.first!;
  }
}

/** Chunk i of a node's results (total: on chunk 0, the chunk count; 0: none, a report alone); chunk 0 carries the report. */
export function resultObject(run: GadgetRun, node: string, i: number, total: number | undefined, data: Buffer | undefined, report?: NodeReport): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: chunkName(run.metadata.name, node, i),
      // beside its run: a team's namespace keeps its results to those its RBAC lets read them
      namespace: run.metadata.namespace ?? NAMESPACE,
      labels: { [RUN_LABEL]: run.metadata.name, [NODE_LABEL]: nodeKey(node) },
      annotations: { [NODE_ANNOTATION]: node, [INDEX_ANNOTATION]: total === undefined ? `${i}` : `${i}/${total}` },
      // garbage-collected with the run
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: run.metadata.name, uid: run.metadata.uid! }],
    },
    ...(data?.length ? { binaryData: { 'results.gz': data.toString('base64') } } : {}),
    ...(report ? { data: { [REPORT_KEY]: JSON.stringify(report) } } : {}),
  };
}

/** What a node left on the API server: its report and unpacked files, or why they cannot be used. */
export interface NodeDownload {
  report?: NodeReport;
  /** files unpacked into dir/<node>/ (absent: the node sent no results) */
  files?: string[];
  /** the node's results are there but broken (missing chunks, a bad pack) */
  error?: string;
  /** the node's ConfigMaps and the bytes of their data as the API server stores them (base64) */
  configMaps: number;
  storedBytes: number;
  /** bytes fetched from the node's agent through the port-forward (its result was above the inline limit) */
  servedBytes?: number;
}

/** Fetches a node's served result into file (serve.ts fetchServed with the run's token and the caller's kubeconfig). */
export type FetchServed = (node: string, served: ServedResult, file: string) => Promise<void>;

/**
 * Every node's results of a run, unpacked into dir/<node>/; one broken node
 * does not stop the others. The list is read a page at a time and each chunk
 * goes to disk at once, so no more than a page is ever in memory.
 */
export async function downloadResults(api: Api, runName: string, dir: string, fetch?: FetchServed, namespace = NAMESPACE, concurrency = DEFAULT_FETCH_CONCURRENCY): Promise<Map<string, NodeDownload>> {
  const sink = new ResultSink(dir);
  try {
    let page: string | undefined;
    do {
      const list = await withRetry(api, 'list configmaps', () =>
        api.core.listNamespacedConfigMap({ namespace, labelSelector: `${RUN_LABEL}=${runName}`, limit: PAGE_CHUNKS, ...(page ? { _continue: page } : {}) }),
      );
      for (const cm of list.items) sink.add(cm);
      page = list.metadata?._continue || undefined;
    } while (page);
    return await sink.finish(fetch, concurrency);
  } finally {
    sink.close();
  }
}

/** The result ConfigMaps of a run, grouped by node, joined and unpacked into dir/<node>/. */
export async function unpackResults(items: V1ConfigMap[], dir: string): Promise<Map<string, NodeDownload>> {
  const sink = new ResultSink(dir);
  try {
    for (const cm of items) sink.add(cm);
    return await sink.finish();
  } finally {
    sink.close();
  }
}

interface Incoming {
  report?: NodeReport;
  total?: number;
  have: Set<number>;
  /** the joined chunks, each at its offset */
  file: string;
  fd?: number;
  configMaps: number;
  storedBytes: number;
}

/** Takes a run's result ConfigMaps one at a time, in any order, each node's chunks written to a file of its own. */
class ResultSink {
  private readonly nodes = new Map<string, Incoming>();

  constructor(private readonly dir: string) {}

  add(cm: V1ConfigMap): void {
    const node = cm.metadata?.annotations?.[NODE_ANNOTATION];
    const [i, n] = (cm.metadata?.annotations?.[INDEX_ANNOTATION] ?? '').split('/').map(Number);
    if (!node || !Number.isInteger(i) || i < 0) return;
    let entry = this.nodes.get(node);
    if (!entry) {
      fs.mkdirSync(this.dir, { recursive: true });
      entry = { have: new Set(), file: path.join(this.dir, `.results-${safeNodeDir(node)}.gz`), configMaps: 0, storedBytes: 0 };
      this.nodes.set(node, entry);
    }
    entry.configMaps++;
    const report = cm.data?.[REPORT_KEY];
    const data = cm.binaryData?.['results.gz'];
    entry.storedBytes += (report?.length ?? 0) + (data?.length ?? 0);
    if (i === 0) {
      entry.total = Number.isInteger(n) ? n : undefined;
      if (report !== undefined) {
        try {
          entry.report = JSON.parse(report) as NodeReport;
        } catch {
          // a report that does not parse is a node without a report: its status still says what happened
        }
      }
    }
    if (data === undefined) return;
    const bytes = Buffer.from(data, 'base64');
    entry.fd ??= fs.openSync(entry.file, 'w', 0o600);
    // every chunk but the last is CHUNK_BYTES long: chunk i starts at i × CHUNK_BYTES
    fs.writeSync(entry.fd, bytes, 0, bytes.length, i * CHUNK_BYTES);
    entry.have.add(i);
  }

  /**
   * Every node's result checked and unpacked, up to `concurrency` nodes at once: a served
   * result is a port-forward through the API server each, and 500 of them one after another
   * would be the run's longest wait. Each node's failure is its own (NodeDownload.error).
   */
  async finish(fetch?: FetchServed, concurrency = 1): Promise<Map<string, NodeDownload>> {
    const out = new Map<string, NodeDownload>();
    for (const [node, e] of this.nodes) {
      out.set(node, { ...(e.report ? { report: e.report } : {}), configMaps: e.configMaps, storedBytes: e.storedBytes });
      if (e.fd !== undefined) fs.closeSync(e.fd);
      e.fd = undefined;
    }
    await eachLimit(this.nodes, concurrency, ([node, e]) => this.finishNode(node, e, out.get(node)!, fetch));
    return out;
  }

  /** One node: its served result fetched (sha256 checked by the fetcher) or its chunks checked whole, then unpacked. */
  private async finishNode(node: string, e: Incoming, d: NodeDownload, fetch?: FetchServed): Promise<void> {
    const served = e.report?.served;
    if (served) {
      // above the inline limit: the node's agent serves it, fetched through the API server's port-forward
      if (!fetch) {
        d.error = `its result (${served.bytes} bytes) is served by its agent ${served.pod} and this download cannot fetch it`;
        return;
      }
      try {
        await fetch(node, served, e.file);
        d.servedBytes = served.bytes;
      } catch (err) {
        d.error = `its result (${served.bytes} bytes, above the inline limit) could not be fetched from its agent: ${apiMessage(err)}`;
        fs.rmSync(e.file, { force: true });
        return;
      }
    } else {
      if (!e.have.size) return;
      const whole = e.total !== undefined && e.have.size === e.total && [...e.have].every((i) => i < e.total!);
      if (!whole || !e.report) {
        d.error = `${e.have.size} of ${e.total ?? 'an unknown number of'} result chunks found${e.report ? '' : ' and no report (chunk 0)'}: the node's upload did not finish`;
        return;
      }
      if (e.report.sha256) {
        const got = await sha256File(e.file);
        if (got !== e.report.sha256) {
          d.error = `its result chunks join to sha256 ${got.slice(0, 16)}…, its report says ${e.report.sha256.slice(0, 16)}…: refusing them`;
          return;
        }
      }
    }
    try {
      d.files = await unpack(fs.createReadStream(e.file), path.join(this.dir, safeNodeDir(node)));
    } catch (err) {
      d.error = `its results do not unpack: ${apiMessage(err)}`;
    }
    fs.rmSync(e.file, { force: true });
  }

  /** Closes and removes what finish did not. */
  close(): void {
    for (const e of this.nodes.values()) {
      if (e.fd !== undefined) fs.closeSync(e.fd);
      e.fd = undefined;
      fs.rmSync(e.file, { force: true });
    }
  }
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) h.update(c);
  return h.digest('hex');
}

/** A node name as a folder name: node names are DNS subdomains already; anything else is replaced. */
export function safeNodeDir(node: string): string {
  const d = node.replace(/[^A-Za-z0-9._-]/g, '_');
  return d === '.' || d === '..' || d === 'raw' ? `node-${d}` : d;
}
