/**
 * The OpenTelemetry logs export (`export: {otlp: …}`): a run's events, as OTLP/HTTP JSON log
 * records (otlp-json.ts), POSTed in batches to the endpoint the recipe names. Bounded on
 * every side: at most `batch_size` records a request, at most `queue` records waiting, at
 * most `max_retries` retries of a batch (429 and 5xx and a connection that fails, with
 * exponential backoff, honouring Retry-After), and at most `timeout` for the whole export
 * at the end of the run. What is not delivered is counted as dropped, with the reason, in
 * summary.json's `export.otlp` — never the headers, whose values may be secrets
 * (`${env:NAME}` takes them from gadget-run's environment).
 *
 * It runs after the verdict, over raw/ (what capture sealed, redacted), so a slow or absent
 * collector never slows the capture; like the actions, it never changes the verdict.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { gzipSync } from 'node:zlib';
import { parseDuration } from '../steps/duration.ts';
import { rawEventsPath, readMeta } from './capture.ts';
import { exportRequest, keyValues, logRecord, nowNanos, type KeyValue, type LogRecord } from './otlp-json.ts';
import type { OtlpExportSummary, Summary } from './summary.ts';
import { TOOL_VERSION } from './version.ts';

export interface OtlpSpec {
  endpoint: string;
  /** HTTP headers; `${env:NAME}` in a value is gadget-run's environment variable NAME */
  headers?: Record<string, string>;
  /** the steps whose events go; default every step */
  steps?: string[];
  batch_size?: number;
  queue?: number;
  max_retries?: number;
  /** the whole export's time at the end of the run */
  timeout?: number | string;
  /** each request's */
  request_timeout?: number | string;
  gzip?: boolean;
  /** resource attributes added to gadget-run's own (service.name, host.name, …) */
  resource?: Record<string, string>;
}

export const OTLP_DEFAULTS = { batch_size: 512, queue: 8192, max_retries: 5, timeout: 30_000, request_timeout: 10_000 };
const BACKOFF_FIRST_MS = 200;
const BACKOFF_MAX_MS = 5_000;

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The environment variables the headers name that are not set: a run with any is refused before it starts. */
export function missingHeaderEnv(spec: OtlpSpec, env: NodeJS.ProcessEnv = process.env): { header: string; name: string }[] {
  const missing: { header: string; name: string }[] = [];
  for (const [header, value] of Object.entries(spec.headers ?? {})) {
    for (const m of value.matchAll(ENV_REF)) if (env[m[1]] === undefined) missing.push({ header, name: m[1] });
  }
  return missing;
}

export function resolveHeaders(spec: OtlpSpec, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(spec.headers ?? {}).map(([k, v]) => [k, v.replace(ENV_REF, (_m, name: string) => env[name] ?? '')]));
}

/** The endpoint as the summary may say it: no user or password in it. */
export function publicEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return endpoint;
  }
}

interface Counters {
  sent: number;
  dropped: number;
  rejected: number;
  batches: number;
  failed_batches: number;
  retries: number;
  reason?: string;
}

/**
 * A bounded queue of log records and the one sender that empties it, batch by batch.
 * offer() never blocks: a full queue drops the record (counted); room() waits for space.
 */
export class OtlpSender {
  private readonly queue: LogRecord[] = [];
  private readonly counters: Counters = { sent: 0, dropped: 0, rejected: 0, batches: 0, failed_batches: 0, retries: 0 };
  private readonly headers: Record<string, string>;
  private readonly batchSize: number;
  private readonly limit: number;
  private readonly maxRetries: number;
  private readonly requestMs: number;
  private readonly deadline: number;
  private readonly gzip: boolean;
  private closed = false;
  /** the export gave up (a batch failed for good, the time ran out): every later record is dropped */
  private gaveUp = false;
  private wake?: () => void;
  private spaceWaiters: (() => void)[] = [];
  private readonly loop: Promise<void>;

  constructor(
    private readonly endpoint: string,
    spec: OtlpSpec,
    private readonly resource: KeyValue[],
    timeoutMs: number,
  ) {
    this.headers = resolveHeaders(spec);
    this.batchSize = spec.batch_size ?? OTLP_DEFAULTS.batch_size;
    this.limit = spec.queue ?? OTLP_DEFAULTS.queue;
    this.maxRetries = spec.max_retries ?? OTLP_DEFAULTS.max_retries;
    this.requestMs = spec.request_timeout === undefined ? OTLP_DEFAULTS.request_timeout : parseDuration(spec.request_timeout);
    this.gzip = spec.gzip ?? false;
    this.deadline = Date.now() + timeoutMs;
    this.loop = this.run();
  }

  /** Queue a record; false (and counted as dropped) when the queue is full or the export gave up. */
  offer(record: LogRecord): boolean {
    if (this.gaveUp || this.queue.length >= this.limit) {
      this.counters.dropped++;
      if (!this.gaveUp) this.counters.reason ??= `the queue (${this.limit} records) was full: the endpoint was slower than the events`;
      return false;
    }
    this.queue.push(record);
    this.wake?.();
    return true;
  }

  /** Resolves when the queue has room (or the export gave up, or the time ran out). */
  room(): Promise<void> {
    if (this.gaveUp || this.queue.length < this.limit) return Promise.resolve();
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  get done(): boolean {
    return this.gaveUp;
  }

  /** Count `n` records that were never offered as dropped (the feeder stopped reading). */
  dropUnread(n: number): void {
    this.counters.dropped += n;
  }

  /** No more records: send what is queued, within the deadline; the figures. */
  async close(): Promise<Counters> {
    this.closed = true;
    this.wake?.();
    await this.loop;
    return { ...this.counters };
  }

  /** An earlier sender to the same endpoint gave up for this reason: drop everything, send nothing. */
  abandon(reason: string): void {
    this.giveUp(reason);
  }

  private giveUp(reason: string): void {
    if (!this.gaveUp) this.counters.reason = reason;
    this.gaveUp = true;
    this.counters.dropped += this.queue.length;
    this.queue.length = 0;
    this.freeSpace();
  }

  private freeSpace(): void {
    for (const w of this.spaceWaiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0) {
        if (this.closed || this.gaveUp) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      // a batch is full, or nothing more will come
      if (this.queue.length < Math.min(this.batchSize, this.limit) && !this.closed) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const batch = this.queue.splice(0, this.batchSize);
      this.freeSpace();
      await this.send(batch);
    }
  }

  /** POST one batch, retrying what the spec calls retryable; counts its end. */
  private async send(batch: LogRecord[]): Promise<void> {
    let body: Buffer = Buffer.from(JSON.stringify(exportRequest(this.resource, { name: 'gadget-run', version: TOOL_VERSION }, batch)));
    const headers: Record<string, string> = { ...this.headers, 'content-type': 'application/json' };
    if (this.gzip) {
      body = gzipSync(body);
      headers['content-encoding'] = 'gzip';
    }
    for (let attempt = 0; ; attempt++) {
      const left = this.deadline - Date.now();
      if (left <= 0) return this.fail(batch, `the export's time (timeout) ran out`);
      let why: string;
      let waitMs: number | undefined;
      try {
        const res = await fetch(this.endpoint, { method: 'POST', headers, body: new Uint8Array(body), signal: AbortSignal.timeout(Math.min(this.requestMs, left)) });
        const text = await res.text().catch(() => '');
        if (res.ok) {
          this.counters.batches++;
          const rejected = rejectedOf(text);
          this.counters.sent += batch.length - rejected.count;
          if (rejected.count) {
            this.counters.rejected += rejected.count;
            this.counters.reason ??= `the endpoint rejected ${rejected.count} records${rejected.message ? `: ${rejected.message}` : ''}`;
          }
          return;
        }
        why = `HTTP ${res.status}${text ? `: ${text.slice(0, 200).replace(/\s+/g, ' ')}` : ''}`;
        // OTLP/HTTP: 429, 502, 503 and 504 are retryable; any other status is not
        if (![429, 502, 503, 504].includes(res.status)) return this.fail(batch, `${publicEndpoint(this.endpoint)} answered ${why} (not retryable)`);
        waitMs = retryAfterMs(res.headers.get('retry-after'));
      } catch (err) {
        const e = err as Error & { cause?: { code?: string; message?: string } };
        why = e.name === 'TimeoutError' ? `no answer within ${Math.min(this.requestMs, left)} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      }
      if (attempt >= this.maxRetries) return this.fail(batch, `${publicEndpoint(this.endpoint)}: ${why} (gave up after ${attempt} retries)`);
      const backoff = waitMs ?? Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      if (Date.now() + backoff >= this.deadline) return this.fail(batch, `${publicEndpoint(this.endpoint)}: ${why}; the next try (in ${Math.round(backoff)} ms) would pass the export's timeout`);
      this.counters.retries++;
      await new Promise((r) => setTimeout(r, backoff));
    }
  }

  private fail(batch: LogRecord[], reason: string): void {
    this.counters.failed_batches++;
    this.counters.dropped += batch.length;
    this.giveUp(reason);
  }
}

/** Retry-After: seconds, or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** ExportLogsServiceResponse.partialSuccess, when the body says some records were rejected. */
function rejectedOf(text: string): { count: number; message?: string } {
  try {
    const p = (JSON.parse(text) as { partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string } }).partialSuccess;
    const count = Number(p?.rejectedLogRecords ?? 0);
    return { count: Number.isFinite(count) ? count : 0, ...(p?.errorMessage ? { message: p.errorMessage } : {}) };
  } catch {
    return { count: 0 };
  }
}

/** gadget-run's resource attributes (OpenTelemetry semantic conventions), then the recipe's; a cluster node's events name their node. */
function resourceOf(summary: Summary, spec: OtlpSpec, node?: string): KeyValue[] {
  const cluster = (summary as Summary & { cluster?: { run?: string } }).cluster;
  return keyValues({
    'service.name': 'gadget-run',
    'service.version': summary.tool_version,
    'host.name': node ?? summary.node,
    ...(node !== undefined ? { 'k8s.node.name': node } : {}),
    'os.type': 'linux',
    ...(node === undefined ? { 'os.version': summary.kernel } : {}),
    'gadget_run.recipe': summary.recipe,
    'gadget_run.status': summary.status,
    'gadget_run.started_at': summary.startedAt,
    ...(cluster?.run !== undefined ? { 'gadget_run.cluster_run': cluster.run } : {}),
    ...spec.resource,
  });
}

/** A stretch of a step's raw file: all of it, or the bytes one node's part of a cluster's merge holds. */
interface Slice {
  step: { id: string; gadget: string };
  file: string;
  start: number;
  /** exclusive; undefined: to the end */
  end?: number;
}

/**
 * What each resource exports: one group (the run's) for a run on one node; for a cluster's
 * merged raw/, a group per node, from the byte ranges its metas' `parts` record (mergeRaw),
 * so every node's events carry its own resource (k8s.node.name).
 */
function groupsOf(dir: string, steps: Summary['steps']): Map<string | undefined, Slice[]> {
  const groups = new Map<string | undefined, Slice[]>();
  const add = (node: string | undefined, slice: Slice) => {
    const list = groups.get(node) ?? [];
    list.push(slice);
    groups.set(node, list);
  };
  for (const step of steps) {
    const file = rawEventsPath(dir, step.id);
    if (!fs.existsSync(file)) continue;
    const parts = readMeta(dir, step.id)?.parts;
    if (!parts) {
      add(undefined, { step, file, start: 0 });
      continue;
    }
    let at = 0;
    for (const part of parts) {
      if (part.bytes > 0) add(part.node, { step, file, start: at, end: at + part.bytes });
      at += part.bytes;
    }
  }
  return groups;
}

/** Export the run's events (raw/ of `dir`), as the recipe's `export.otlp` says; its figures for summary.json. */
export async function exportOtlp(spec: OtlpSpec, dir: string, summary: Summary, log: (line: string) => void): Promise<OtlpExportSummary> {
  const started = Date.now();
  const timeoutMs = spec.timeout === undefined ? OTLP_DEFAULTS.timeout : parseDuration(spec.timeout);
  const steps = summary.steps.filter((s) => !spec.steps || spec.steps.includes(s.id));
  const total: Counters = { sent: 0, dropped: 0, rejected: 0, batches: 0, failed_batches: 0, retries: 0 };
  let records = 0;
  let gaveUp: string | undefined;
  for (const [node, slices] of groupsOf(dir, steps)) {
    // one deadline for the whole export, whatever the number of nodes
    const sender = new OtlpSender(spec.endpoint, spec, resourceOf(summary, spec, node), Math.max(0, started + timeoutMs - Date.now()));
    // an endpoint that failed for good for one node's events is not tried again for the next node's
    if (gaveUp !== undefined) sender.abandon(gaveUp);
    for (const slice of slices) records += await feed(sender, slice);
    const c = await sender.close();
    for (const k of ['sent', 'dropped', 'rejected', 'batches', 'failed_batches', 'retries'] as const) total[k] += c[k];
    total.reason ??= c.reason;
    if (sender.done) gaveUp ??= c.reason ?? 'an earlier batch failed';
  }
  const out: OtlpExportSummary = {
    endpoint: publicEndpoint(spec.endpoint),
    ...(spec.steps ? { steps: spec.steps } : {}),
    records,
    sent: total.sent,
    dropped: total.dropped,
    ...(total.rejected ? { rejected: total.rejected } : {}),
    batches: total.batches,
    failed_batches: total.failed_batches,
    retries: total.retries,
    durationMs: Date.now() - started,
    ...(total.reason ? { reason: total.reason } : {}),
  };
  log(`export otlp: ${out.sent} of ${records} events sent to ${out.endpoint}${out.dropped ? `, ${out.dropped} dropped: ${out.reason}` : ''}`);
  return out;
}

/** Offer a slice's events to the sender (waiting for room, never growing its queue); the events read. */
async function feed(sender: OtlpSender, slice: Slice): Promise<number> {
  const input = fs.createReadStream(slice.file, { start: slice.start, ...(slice.end !== undefined ? { end: slice.end - 1 } : {}) });
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  const observed = nowNanos();
  let records = 0;
  for await (const line of lines) {
    if (!line) continue;
    records++;
    if (sender.done) {
      // given up: the rest is counted, not parsed
      sender.dropUnread(1);
      continue;
    }
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      sender.dropUnread(1);
      continue;
    }
    if (!event || typeof event !== 'object' || Array.isArray(event)) {
      sender.dropUnread(1);
      continue;
    }
    await sender.room();
    sender.offer(logRecord(event as Record<string, unknown>, line, slice.step.id, slice.step.gadget, observed));
  }
  return records;
}
