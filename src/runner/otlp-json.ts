/**
 * The OTLP/HTTP JSON encoding of logs (opentelemetry-proto's ExportLogsServiceRequest in the
 * protobuf JSON mapping, as the OTLP specification fixes it): lowerCamelCase field names,
 * 64-bit integers (timeUnixNano, intValue) as decimal strings, enums as numbers, trace and
 * span ids absent. Any JSON value an event holds becomes an AnyValue.
 */

/** opentelemetry.proto.common.v1.AnyValue, JSON: exactly one key, or none for an empty value (null). */
export type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number | 'NaN' | 'Infinity' | '-Infinity' }
  | { arrayValue: { values: AnyValue[] } }
  | { kvlistValue: { values: KeyValue[] } }
  | Record<string, never>;

export interface KeyValue {
  key: string;
  value: AnyValue;
}

export interface LogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  /** SeverityNumber: 9 is INFO */
  severityNumber: number;
  severityText: string;
  body: AnyValue;
  attributes: KeyValue[];
}

export interface ExportLogsServiceRequest {
  resourceLogs: {
    resource: { attributes: KeyValue[] };
    scopeLogs: { scope: { name: string; version: string }; logRecords: LogRecord[] }[];
  }[];
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** deeper values are sent as their JSON text: a collector's stack is not ours to test */
export const MAX_DEPTH = 16;
export const SEVERITY_INFO = 9;

/** A JSON value (and a bigint) as an AnyValue. */
export function anyValue(v: unknown, depth = 0): AnyValue {
  if (v === null || v === undefined) return {};
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'bigint':
      return v >= INT64_MIN && v <= INT64_MAX ? { intValue: v.toString() } : { stringValue: v.toString() };
    case 'number':
      if (Number.isNaN(v)) return { doubleValue: 'NaN' };
      if (!Number.isFinite(v)) return { doubleValue: v > 0 ? 'Infinity' : '-Infinity' };
      if (Number.isInteger(v) && !Object.is(v, -0)) {
        const big = BigInt(v);
        if (big >= INT64_MIN && big <= INT64_MAX) return { intValue: big.toString() };
      }
      return { doubleValue: v };
    case 'object':
      if (depth >= MAX_DEPTH) return { stringValue: safeJson(v) };
      if (Array.isArray(v)) return { arrayValue: { values: v.map((x) => anyValue(x, depth + 1)) } };
      return { kvlistValue: { values: keyValues(v as Record<string, unknown>, depth + 1) } };
    default:
      return { stringValue: String(v) };
  }
}

export function keyValues(o: Record<string, unknown>, depth = 0): KeyValue[] {
  return Object.entries(o).map(([key, value]) => ({ key, value: anyValue(value, depth) }));
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? '';
  } catch {
    return String(v);
  }
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i;

/** An RFC 3339 time with up to ns (the events' `timestamp`) as Unix ns, a decimal string; "0" (unknown, as OTLP says) when it is not one. */
export function unixNanos(rfc3339: unknown): string {
  if (typeof rfc3339 !== 'string') return '0';
  const m = RFC3339.exec(rfc3339);
  if (!m) return '0';
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms) || ms < 0) return '0';
  return (BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'))).toString();
}

/** Now, as Unix ns. */
export function nowNanos(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

/**
 * One event as a LogRecord: its fields as attributes (plus the step and gadget it came
 * from), its JSON line as the body, its timestamp as the record's time.
 */
export function logRecord(event: Record<string, unknown>, line: string, step: string, gadget: string, observed: string): LogRecord {
  return {
    timeUnixNano: unixNanos(event.timestamp),
    observedTimeUnixNano: observed,
    severityNumber: SEVERITY_INFO,
    severityText: 'INFO',
    body: { stringValue: line },
    attributes: [
      { key: 'event.name', value: { stringValue: `gadget_run.${gadget.replace('/', '.')}` } },
      { key: 'gadget_run.step', value: { stringValue: step } },
      { key: 'gadget_run.gadget', value: { stringValue: gadget } },
      ...keyValues(event),
    ],
  };
}

/** The request around a batch of records. */
export function exportRequest(resource: KeyValue[], scope: { name: string; version: string }, records: LogRecord[]): ExportLogsServiceRequest {
  return { resourceLogs: [{ resource: { attributes: resource }, scopeLogs: [{ scope, logRecords: records }] }] };
}
