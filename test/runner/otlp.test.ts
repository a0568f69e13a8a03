/**
 * The OpenTelemetry logs export against a collector-shaped receiver on loopback, written
 * here: it checks each request's JSON field by field against the OTLP/HTTP JSON encoding of
 * ExportLogsServiceRequest (and gunzips), answers as a collector does (200 with
 * partialSuccess, 503 with Retry-After, nothing at all when down). Property tests: any JSON
 * value (and bigint) becomes a valid AnyValue that decodes back to itself.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { replay, run, RecipeError } from '../../src/api/index.ts';
import { captured as capturedRun } from './evaluate-helpers.ts';
import { anyValue, MAX_DEPTH, unixNanos, type AnyValue } from '../../src/runner/otlp-json.ts';
import { exportOtlp, OtlpSender, retryAfterMs } from '../../src/runner/otlp.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { kernelSkip, objectDir } from '../helpers/kernel.ts';
import { assertValidSummary } from './summary-schema.ts';
import { readJson, runCli, tempDir, writeRecipe } from './cli-helpers.ts';

// ---------------------------------------------------------------------------
// the spec's shapes, checked field by field

const ANY_KEYS = ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'];
const LOG_RECORD_KEYS = ['timeUnixNano', 'observedTimeUnixNano', 'severityNumber', 'severityText', 'body', 'attributes', 'droppedAttributesCount', 'flags', 'traceId', 'spanId', 'eventName'];
const INT64 = /^-?\d+$/;

function checkAnyValue(v: unknown, where: string): void {
  assert.ok(v && typeof v === 'object' && !Array.isArray(v), `${where}: an AnyValue is an object`);
  const keys = Object.keys(v);
  assert.ok(keys.length <= 1, `${where}: an AnyValue has one value at most (${keys})`);
  if (!keys.length) return;
  const [k] = keys;
  assert.ok(ANY_KEYS.includes(k), `${where}: ${k} is not an AnyValue field`);
  const x = (v as Record<string, unknown>)[k];
  switch (k) {
    case 'stringValue':
      return assert.equal(typeof x, 'string', where);
    case 'boolValue':
      return assert.equal(typeof x, 'boolean', where);
    case 'intValue': {
      assert.ok(typeof x === 'string' && INT64.test(x), `${where}: intValue is an int64 as a decimal string (${x})`);
      const b = BigInt(x as string);
      return assert.ok(b >= -(2n ** 63n) && b < 2n ** 63n, `${where}: intValue within int64`);
    }
    case 'doubleValue':
      return assert.ok((typeof x === 'number' && Number.isFinite(x)) || ['NaN', 'Infinity', '-Infinity'].includes(x as string), `${where}: doubleValue ${x}`);
    case 'arrayValue':
      assert.deepEqual(Object.keys(x as object), ['values'], `${where}: ArrayValue has values`);
      return (x as { values: unknown[] }).values.forEach((e, i) => checkAnyValue(e, `${where}[${i}]`));
    case 'kvlistValue':
      assert.deepEqual(Object.keys(x as object), ['values'], `${where}: KeyValueList has values`);
      return checkKeyValues((x as { values: unknown[] }).values, where);
  }
}

function checkKeyValues(list: unknown, where: string): void {
  assert.ok(Array.isArray(list), `${where}: a KeyValue list`);
  for (const [i, kv] of (list as unknown[]).entries()) {
    assert.deepEqual(Object.keys(kv as object).sort(), ['key', 'value'], `${where}[${i}]: KeyValue is {key, value}`);
    assert.equal(typeof (kv as { key: unknown }).key, 'string');
    checkAnyValue((kv as { value: unknown }).value, `${where}.${(kv as { key: string }).key}`);
  }
}

/** Each received record's resource attributes. */
const resourceOfRecord = new WeakMap<object, Record<string, unknown>>();

/** An ExportLogsServiceRequest as OTLP/HTTP JSON says it; its records. */
function checkRequest(body: unknown): Record<string, any>[] {
  assert.deepEqual(Object.keys(body as object), ['resourceLogs']);
  const records: Record<string, any>[] = [];
  for (const rl of (body as any).resourceLogs) {
    assert.deepEqual(Object.keys(rl).sort(), ['resource', 'scopeLogs']);
    checkKeyValues(rl.resource.attributes, 'resource');
    for (const sl of rl.scopeLogs) {
      assert.deepEqual(Object.keys(sl).sort(), ['logRecords', 'scope']);
      assert.equal(sl.scope.name, 'gadget-run');
      assert.equal(typeof sl.scope.version, 'string');
      for (const r of sl.logRecords) {
        for (const k of Object.keys(r)) assert.ok(LOG_RECORD_KEYS.includes(k), `LogRecord has no field ${k}`);
        assert.match(r.timeUnixNano, INT64, 'timeUnixNano: a decimal string');
        assert.match(r.observedTimeUnixNano, INT64);
        assert.equal(r.severityNumber, 9, 'SEVERITY_NUMBER_INFO, as a number');
        assert.equal(r.severityText, 'INFO');
        checkAnyValue(r.body, 'body');
        checkKeyValues(r.attributes, 'attributes');
        resourceOfRecord.set(r, Object.fromEntries(rl.resource.attributes.map((kv: { key: string; value: AnyValue }) => [kv.key, decode(kv.value)])));
        records.push(r);
      }
    }
  }
  return records;
}

function attrs(r: Record<string, any>): Record<string, unknown> {
  return Object.fromEntries(r.attributes.map((kv: { key: string; value: AnyValue }) => [kv.key, decode(kv.value)]));
}

/** AnyValue → the JSON value it carries (intValue → number when safe, else bigint) */
function decode(v: AnyValue): unknown {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) {
    const b = BigInt(v.intValue);
    // a JSON number past 2^53 is still the number it was: exact as a double
    return BigInt(Number(b)) === b ? Number(b) : b;
  }
  if ('doubleValue' in v) return typeof v.doubleValue === 'number' ? v.doubleValue : Number(v.doubleValue);
  if ('arrayValue' in v) return v.arrayValue.values.map(decode);
  if ('kvlistValue' in v) return Object.fromEntries(v.kvlistValue.values.map((kv) => [kv.key, decode(kv.value)]));
  return null;
}

// ---------------------------------------------------------------------------
// a collector-shaped receiver

interface Received {
  headers: http.IncomingHttpHeaders;
  records: Record<string, any>[];
}

async function receiver(answer: (n: number) => { status: number; headers?: Record<string, string>; body?: string }) {
  const got: Received[] = [];
  const errors: unknown[] = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const a = answer(n++);
      try {
        assert.equal(req.method, 'POST');
        assert.equal(req.url, '/v1/logs');
        assert.equal(req.headers['content-type'], 'application/json');
        let raw = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
        const records = checkRequest(JSON.parse(raw.toString('utf8')));
        if (a.status === 200) got.push({ headers: req.headers, records });
      } catch (err) {
        errors.push(err);
      }
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(a.body ?? (a.status === 200 ? '{}' : ''));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/logs`,
    got,
    errors,
    requests: () => n,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A port nothing listens on: bound, then closed. */
async function downUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}/v1/logs`;
}

/** A captured folder with one step's raw events, and the summary that goes with it. */
function captured(events: Record<string, unknown>[]): { dir: string; summary: Summary } {
  const dir = tempDir('gadget-run-otlp-');
  fs.mkdirSync(path.join(dir, 'raw'));
  fs.writeFileSync(path.join(dir, 'raw', 'execs.ndjson'), events.map((e) => JSON.stringify(e) + '\n').join(''));
  const summary: Summary = {
    schema_version: 1, tool_version: 'test', recipe: 'otlp', file: 'otlp.yaml', status: 'passed', node: 'n1', kernel: '6.18',
    startedAt: new Date().toISOString(), durationMs: 1, reasons: [], assertions: [],
    steps: [{ id: 'execs', gadget: 'trace/exec', status: 'ok', events: events.length, lost: 0, artifacts: [], durationMs: 1 }],
  };
  return { dir, summary };
}

const execEvents = (n: number) => Array.from({ length: n }, (_, i) => ({
  timestamp: `2026-12-04T20:00:00.${String(i).padStart(9, '0')}Z`, pid: 1000 + i, comm: 'curl', args: ['curl', '-s', `http://x/${i}`], uid: 0, error: 0, ok: true, ratio: 0.5,
}));

// ---------------------------------------------------------------------------

test('any JSON value (and a bigint, NaN, ±Infinity) is a valid AnyValue that decodes back to itself', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: MAX_DEPTH - 2 }), (v) => {
    const enc = anyValue(v);
    checkAnyValue(enc, 'value');
    assert.deepEqual(decode(enc), v);
  }), { numRuns: 500 });
  fc.assert(fc.property(fc.bigInt(), (b) => {
    const enc = anyValue(b);
    checkAnyValue(enc, 'bigint');
    assert.equal('intValue' in enc ? BigInt(enc.intValue) : BigInt((enc as { stringValue: string }).stringValue), b);
  }));
  for (const x of [NaN, Infinity, -Infinity, 2 ** 63, -(2 ** 63), 1e300, 0.1]) checkAnyValue(anyValue(x), String(x));
  assert.deepEqual(anyValue(2 ** 63), { doubleValue: 2 ** 63 }, 'past int64: a double');
  assert.deepEqual(anyValue(-(2 ** 63)), { intValue: '-9223372036854775808' });
  // deeper than MAX_DEPTH: its JSON text, not a stack a collector may refuse
  let deep: unknown = 1;
  for (let i = 0; i < MAX_DEPTH + 5; i++) deep = [deep];
  checkAnyValue(anyValue(deep), 'deep');
});

test('event timestamps (RFC 3339 with ns) become timeUnixNano exactly; anything else is 0 (unknown)', () => {
  fc.assert(fc.property(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }), fc.integer({ min: 0, max: 999_999 }), (d, sub) => {
    const ns = BigInt(d.getTime()) * 1_000_000n + BigInt(sub);
    const iso = `${d.toISOString().slice(0, 19)}.${String(d.getUTCMilliseconds()).padStart(3, '0')}${String(sub).padStart(6, '0')}Z`;
    assert.equal(unixNanos(iso), ns.toString());
  }));
  assert.equal(unixNanos('2026-12-04T20:00:00Z'), (BigInt(Date.parse('2026-12-04T20:00:00Z')) * 1_000_000n).toString());
  assert.equal(unixNanos('2026-12-04T21:00:00.5+01:00'), (BigInt(Date.parse('2026-12-04T20:00:00Z')) * 1_000_000n + 500_000_000n).toString());
  for (const bad of [undefined, 12, 'yesterday', '2026-12-04 20:00:00']) assert.equal(unixNanos(bad), '0');
});

test('Retry-After: seconds or an HTTP date', () => {
  assert.equal(retryAfterMs('3'), 3000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs('soon'), undefined);
  const ms = retryAfterMs(new Date(Date.now() + 60_000).toUTCString())!;
  assert.ok(ms > 50_000 && ms <= 60_000, String(ms));
});

test('the events go in bounded batches, every field as the spec encodes it, with the headers from the environment and gzip', async (t) => {
  const r = await receiver(() => ({ status: 200 }));
  t.after(r.close);
  process.env.GADGET_RUN_TEST_OTLP_TOKEN = 's3cret-token';
  t.after(() => delete process.env.GADGET_RUN_TEST_OTLP_TOKEN);
  const events = execEvents(1234);
  const { dir, summary } = captured(events);
  const out = await exportOtlp({ endpoint: r.url, batch_size: 500, gzip: true, headers: { authorization: 'Bearer ${env:GADGET_RUN_TEST_OTLP_TOKEN}', 'x-scope': 'ci' }, resource: { 'deployment.environment': 'ci' } }, dir, summary, () => {});
  assert.deepEqual(r.errors, []);
  assert.deepEqual(out, { endpoint: r.url, records: 1234, sent: 1234, dropped: 0, batches: 3, failed_batches: 0, retries: 0, durationMs: out.durationMs });
  assert.deepEqual(r.got.map((g) => g.records.length), [500, 500, 234]);
  for (const g of r.got) {
    assert.equal(g.headers.authorization, 'Bearer s3cret-token');
    assert.equal(g.headers['x-scope'], 'ci');
    assert.equal(g.headers['content-encoding'], 'gzip');
  }
  const records = r.got.flatMap((g) => g.records);
  records.forEach((rec, i) => {
    const e = events[i];
    assert.equal(rec.timeUnixNano, (BigInt(Date.parse('2026-12-04T20:00:00Z')) * 1_000_000n + BigInt(i)).toString());
    assert.deepEqual(JSON.parse(rec.body.stringValue), e);
    assert.deepEqual(attrs(rec), { 'event.name': 'gadget_run.trace.exec', 'gadget_run.step': 'execs', 'gadget_run.gadget': 'trace/exec', ...e });
  });
  const pidAttr = records[0].attributes.find((a: { key: string }) => a.key === 'pid');
  assert.deepEqual(pidAttr.value, { intValue: '1000' }, 'an integer is an int64 string');
  assert.deepEqual(records[0].attributes.find((a: { key: string }) => a.key === 'ratio').value, { doubleValue: 0.5 });
  assert.deepEqual(records[0].attributes.find((a: { key: string }) => a.key === 'args').value.arrayValue.values[0], { stringValue: 'curl' });
});

test('503 with Retry-After, then 200: the batch is retried after the wait and delivered; partialSuccess rejections are counted', async (t) => {
  const r = await receiver((n) => (n === 0 ? { status: 503, headers: { 'retry-after': '1' } } : n === 1 ? { status: 200, body: JSON.stringify({ partialSuccess: { rejectedLogRecords: '2', errorMessage: 'too old' } }) } : { status: 200 }));
  t.after(r.close);
  const { dir, summary } = captured(execEvents(10));
  const out = await exportOtlp({ endpoint: r.url }, dir, summary, () => {});
  assert.deepEqual(r.errors, []);
  assert.equal(r.requests(), 2);
  assert.equal(out.retries, 1);
  assert.equal(out.sent, 8);
  assert.equal(out.rejected, 2);
  assert.equal(out.dropped, 0);
  assert.equal(out.batches, 1);
  assert.match(out.reason!, /the endpoint rejected 2 records: too old/);
  assert.ok(out.durationMs >= 900, `waited for Retry-After (${out.durationMs} ms)`);
});

test('a 400 is not retried: the batch fails and the rest is dropped, counted, with the answer', async (t) => {
  const r = await receiver(() => ({ status: 400, body: 'bad payload' }));
  t.after(r.close);
  const { dir, summary } = captured(execEvents(30));
  const out = await exportOtlp({ endpoint: r.url, batch_size: 10 }, dir, summary, () => {});
  assert.equal(r.requests(), 1);
  assert.deepEqual([out.sent, out.dropped, out.failed_batches, out.retries, out.records], [0, 30, 1, 0, 30]);
  assert.match(out.reason!, /answered HTTP 400: bad payload \(not retryable\)/);
});

test('an endpoint that is down: retries with backoff within max_retries, then every event is counted as dropped', async () => {
  const url = await downUrl();
  const { dir, summary } = captured(execEvents(50));
  const out = await exportOtlp({ endpoint: url, batch_size: 10, max_retries: 2, timeout: '20s' }, dir, summary, () => {});
  assert.deepEqual([out.sent, out.dropped, out.failed_batches, out.retries, out.batches], [0, 50, 1, 2, 0]);
  assert.match(out.reason!, /ECONNREFUSED \(gave up after 2 retries\)/);
});

test('the export\'s timeout bounds it: a Retry-After past it gives up at once, and says so', async (t) => {
  const r = await receiver(() => ({ status: 429, headers: { 'retry-after': '3600' } }));
  t.after(r.close);
  const { dir, summary } = captured(execEvents(5));
  const out = await exportOtlp({ endpoint: r.url, timeout: '2s' }, dir, summary, () => {});
  assert.equal(r.requests(), 1);
  assert.deepEqual([out.sent, out.dropped], [0, 5]);
  assert.match(out.reason!, /HTTP 429.*would pass the export's timeout/);
  assert.ok(out.durationMs < 2000);
});

test('a full queue drops what does not fit and counts it (offer never blocks)', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = http.createServer((req, res) => {
    req.resume();
    void gate.then(() => res.end('{}'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`;
  const sender = new OtlpSender(url, { endpoint: url, batch_size: 5, queue: 10 }, [], 10_000);
  const rec = (i: number) => ({ timeUnixNano: '0', observedTimeUnixNano: '0', severityNumber: 9, severityText: 'INFO', body: { stringValue: String(i) }, attributes: [] });
  let accepted = 0;
  for (let i = 0; i < 10; i++) accepted += sender.offer(rec(i)) ? 1 : 0;
  await new Promise((r) => setTimeout(r, 100)); // the first batch is in flight, the queue has room for 5 more
  for (let i = 10; i < 40; i++) accepted += sender.offer(rec(i)) ? 1 : 0;
  release();
  const c = await sender.close();
  assert.equal(accepted, 15);
  assert.deepEqual([c.sent, c.dropped, c.batches], [15, 25, 3]);
  assert.match(c.reason!, /the queue \(10 records\) was full/);
});

test('a run exports its events after the verdict; the header secret is never in summary.json; a missing env var stops the run before it starts', { skip: kernelSkip() }, async (t) => {
  const r = await receiver(() => ({ status: 200 }));
  t.after(r.close);
  process.env.GADGET_RUN_TEST_OTLP_TOKEN = 'tok-9f8e7d';
  t.after(() => delete process.env.GADGET_RUN_TEST_OTLP_TOKEN);
  const token = `otlp-${process.pid}`;
  const recipe = {
    name: 'otlp-run',
    run: `/bin/echo ${token}`,
    steps: [{ id: 'execs', gadget: 'trace/exec' }, { id: 'opens', gadget: 'trace/open', filter: 'comm==nothing-here' }],
    export: { otlp: { endpoint: r.url, steps: ['execs'], headers: { authorization: 'Bearer ${env:GADGET_RUN_TEST_OTLP_TOKEN}' } } },
  };
  const out = tempDir('gadget-run-otlp-run-');
  const result = await run(recipe, { out, objects: objectDir() });
  assert.equal(result.status, 'passed', result.reasons.join('; '));
  assert.deepEqual(r.errors, []);
  const summary = readJson(result.paths.summary);
  assertValidSummary(summary);
  const execs = summary.steps.find((s: { id: string }) => s.id === 'execs');
  assert.deepEqual({ ...summary.export.otlp, durationMs: 0 }, { endpoint: r.url, steps: ['execs'], records: execs.events, sent: execs.events, dropped: 0, batches: 1, failed_batches: 0, retries: 0, durationMs: 0 });
  const echo = r.got.flatMap((g) => g.records).map(attrs).find((a) => a.comm === 'echo');
  assert.ok(echo, 'the workload\'s exec reached the receiver');
  assert.deepEqual(echo.args, ['/bin/echo', token]);
  assert.ok(r.got.flatMap((g) => g.records).every((rec) => attrs(rec)['gadget_run.step'] === 'execs'), 'only the steps named');
  for (const f of ['summary.json', 'report.md']) assert.ok(!fs.readFileSync(path.join(out, f), 'utf8').includes('tok-9f8e7d'), `${f} holds no header value`);
  delete process.env.GADGET_RUN_TEST_OTLP_TOKEN;
  await assert.rejects(run(recipe, { out, objects: objectDir() }), (err: unknown) => {
    assert.ok(err instanceof RecipeError);
    assert.match(err.message, /export\.otlp\.headers\.authorization: \$\{env:GADGET_RUN_TEST_OTLP_TOKEN\}: GADGET_RUN_TEST_OTLP_TOKEN is not set in gadget-run's environment/);
    return true;
  });
});

test('replay exports what the run captured, as run does; a cluster\'s merge goes with one resource per node (k8s.node.name)', async (t) => {
  const r = await receiver(() => ({ status: 200 }));
  t.after(r.close);
  const from = tempDir('gadget-run-otlp-replay-');
  const events = execEvents(5);
  const line = (e: unknown) => Buffer.byteLength(JSON.stringify(e) + '\n');
  const bytes = (list: unknown[]) => list.reduce<number>((n, e) => n + line(e), 0);
  // what mergeRaw leaves: node-a's events, then node-b's, and which bytes are whose
  capturedRun(from, { execs: events }, Object.keys(events[0]), {
    execs: { gadget: 'trace/exec', parts: [{ node: 'node-a', bytes: bytes(events.slice(0, 3)), events: 3 }, { node: 'node-b', bytes: bytes(events.slice(3)), events: 2 }] },
  });
  fs.writeFileSync(path.join(from, 'raw', 'run.json'), JSON.stringify({ tool_version: 'test', node: 'cluster (2 nodes)', kernel: '', startedAt: new Date().toISOString() }));
  const recipe = { name: 'otlp-replay', duration: '1s', steps: [{ id: 'execs', gadget: 'trace/exec' }], export: { otlp: { endpoint: r.url, resource: { 'deployment.environment': 'ci' } } } };
  const out = tempDir('gadget-run-otlp-replay-out-');
  const result = await replay(recipe, { from, out });
  assert.equal(result.status, 'passed', result.reasons.join('; '));
  assert.deepEqual(r.errors, []);
  const summary = readJson(result.paths.summary);
  assertValidSummary(summary);
  assert.deepEqual({ ...summary.export.otlp, durationMs: 0 }, { endpoint: r.url, records: 5, sent: 5, dropped: 0, batches: 2, failed_batches: 0, retries: 0, durationMs: 0 });
  const got = r.got.flatMap((g) => g.records).map((rec) => ({ pid: attrs(rec).pid, resource: resourceOfRecord.get(rec)! }));
  assert.deepEqual(got.map((g) => [g.pid, g.resource['k8s.node.name'], g.resource['host.name']]), [
    [1000, 'node-a', 'node-a'], [1001, 'node-a', 'node-a'], [1002, 'node-a', 'node-a'], [1003, 'node-b', 'node-b'], [1004, 'node-b', 'node-b'],
  ]);
  for (const g of got) {
    assert.equal(g.resource['service.name'], 'gadget-run');
    assert.equal(g.resource['gadget_run.recipe'], 'otlp-replay');
    assert.equal(g.resource['deployment.environment'], 'ci', 'the recipe\'s own resource attributes too');
  }
  // replay({export: false}) evaluates only
  const quiet = await replay(recipe, { from, out, export: false });
  assert.equal(quiet.export, undefined);
  assert.equal(r.got.flatMap((g) => g.records).length, 5, 'nothing sent again');
  // and the CLI's replay --no-export; without it the CLI sends as the API does
  const file = writeRecipe(tempDir('gadget-run-otlp-replay-recipe-'), 'otlp-replay.yaml', JSON.stringify(recipe));
  const cliQuiet = await runCli(['replay', file, '--from', from, '--out', out, '--no-export']);
  assert.equal(cliQuiet.code, 0, cliQuiet.stderr);
  assert.equal(readJson(path.join(out, 'summary.json')).export, undefined);
  assert.equal(r.got.flatMap((g) => g.records).length, 5, 'replay --no-export sent nothing');
  const cliSends = await runCli(['replay', file, '--from', from, '--out', out]);
  assert.equal(cliSends.code, 0, cliSends.stderr);
  assert.equal(r.got.flatMap((g) => g.records).length, 10, 'replay without --no-export sent the five again');
});

test('a collector that fails for one node\'s events is not tried again for the next node\'s: they are counted as dropped, with the reason', async (t) => {
  const r = await receiver(() => ({ status: 400, body: 'bad' }));
  t.after(r.close);
  const { dir, summary } = captured(execEvents(4));
  const e = execEvents(4);
  const half = e.slice(0, 2).reduce((n, x) => n + Buffer.byteLength(JSON.stringify(x) + '\n'), 0);
  fs.writeFileSync(path.join(dir, 'raw', 'execs.meta.json'), JSON.stringify({ id: 'execs', gadget: 'trace/exec', fields: [], status: 'ok', events: 4, lost: 0, durationMs: 1, parts: [{ node: 'a', bytes: half, events: 2 }, { node: 'b', bytes: half, events: 2 }] }));
  const out = await exportOtlp({ endpoint: r.url }, dir, summary, () => {});
  assert.equal(r.requests(), 1, 'one request, for node a');
  assert.deepEqual({ records: out.records, sent: out.sent, dropped: out.dropped, failed_batches: out.failed_batches }, { records: 4, sent: 0, dropped: 4, failed_batches: 1 });
  assert.match(out.reason!, /answered HTTP 400: bad \(not retryable\)/);
});

test('property: however a merge splits its events among nodes, each event goes once, with its own node as resource', async (t) => {
  const r = await receiver(() => ({ status: 200 }));
  t.after(r.close);
  const event = fc.record({ pid: fc.integer({ min: 1, max: 1 << 22 }), comm: fc.string({ maxLength: 16 }), args: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }) });
  const nodes = fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'node-with-a-long-name'), fc.array(event, { maxLength: 6 })), { minLength: 1, maxLength: 4 });
  await fc.assert(fc.asyncProperty(nodes, async (split) => {
    r.got.length = 0;
    const all = split.flatMap(([, events]) => events);
    const { dir, summary } = captured(all);
    const parts = split.map(([node, events]) => ({ node, bytes: events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e) + '\n'), 0), events: events.length }));
    fs.writeFileSync(path.join(dir, 'raw', 'execs.meta.json'), JSON.stringify({ id: 'execs', gadget: 'trace/exec', fields: [], status: 'ok', events: all.length, lost: 0, durationMs: 1, parts }));
    const out = await exportOtlp({ endpoint: r.url }, dir, summary, () => {});
    assert.equal(out.sent, all.length);
    const got = r.got.flatMap((g) => g.records).map((rec) => [resourceOfRecord.get(rec)!['k8s.node.name'], JSON.parse(rec.body.stringValue)]);
    // one resource per node: a node's stretches go together, in the order the merge holds them
    // (which node goes first is not part of the promise: a node whose first stretch is empty may follow)
    const byNode = new Map<string, unknown[]>();
    for (const [node, events] of split) byNode.set(node, [...(byNode.get(node) ?? []), ...events.map((e) => JSON.parse(JSON.stringify(e)))]);
    const gotByNode = new Map<string, unknown[]>();
    let last: string | undefined;
    for (const [node, e] of got as [string, unknown][]) {
      assert.ok(node === last || !gotByNode.has(node), `node ${node}'s events came in two stretches`);
      gotByNode.set(node, [...(gotByNode.get(node) ?? []), e]);
      last = node;
    }
    const sorted = (m: Map<string, unknown[]>) => [...m].filter(([, events]) => events.length).sort(([a], [b]) => a.localeCompare(b));
    assert.deepEqual(sorted(gotByNode), sorted(byNode));
  }), { numRuns: 25 });
  assert.deepEqual(r.errors, []);
});
