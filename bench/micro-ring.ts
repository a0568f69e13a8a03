/**
 * Pure-JS micro-benchmark of the user-space hot path of a stream step: the
 * generated trace/open codec writing NDJSON bytes, then the same into the
 * step's LineSink (a file), then the RingReader drain loop feeding both, as
 * StreamSession runs them; and the string encoder (snapshots) for comparison.
 * Records are synthetic, laid out as in the ring (8-byte header, the
 * open_event from the object's BTF, rounded up to 8). No kernel, no root.
 *
 *   node --import tsx bench/micro-ring.ts [--records 2000000] [--path /dev/null]
 *
 * RingReader has no constructor without a kernel map, so the drain case
 * builds one around plain arrays with its prototype (see fakeRing); if the
 * reader's private fields are renamed that case fails loudly, the others run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BpfObject } from '../src/ebpf/object.ts';
import type { BtfStruct } from '../src/ebpf/btf.ts';
import { RingReader } from '../src/ebpf/ringbuf.ts';
import { buildCodec, type ByteWriter } from '../src/steps/codec.ts';
import { LineSink } from '../src/steps/sink.ts';
import { gadgets } from '../src/steps/index.ts';
import { writeStruct } from '../test/fixtures/events.ts';
import { ROOT, RING_BYTES } from './session.ts';

const { values: opts } = parseArgs({
  options: {
    records: { type: 'string', default: '2000000' },
    path: { type: 'string', default: '/dev/null' },
  },
});
const TOTAL = Number(opts.records);
const HEADER = 8;

const def = gadgets['trace/open'];
const obj = BpfObject.open(path.join(ROOT, 'build/bpf', def.object)); // BTF only: never loaded
const layout = obj.btf.struct(def.struct);
obj.close();

const stride = (layout.size + HEADER + 7) & ~7;
const perPass = Math.floor(RING_BYTES / stride);
// twice the ring, as the kernel maps it; records stay in the first half
const ring = Buffer.alloc(2 * RING_BYTES);
fillRecords(ring, layout);

const codec = buildCodec(def, layout, { buf: ring, dv: new DataView(ring.buffer, ring.byteOffset, ring.byteLength) }, [], {
  bootToWallNs: BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint(),
});
// the sink creates its file exclusively (O_EXCL): one file per case
const spool = (name: string) => path.join(os.tmpdir(), `gadget-run-micro-${process.pid}-${name}.ndjson`);
// the lines are ASCII here, so characters are bytes
let lineBytesPerPass = 0;
eachRecord((offset, length) => (lineBytesPerPass += codec.encode(offset, length)!.length + 1));

console.log(`trace/open records: ${layout.size} bytes + header = ${stride} ring bytes each, ${perPass} per ${RING_BYTES >> 20} MiB pass, ${TOTAL} records per case, path "${opts.path}"`);
console.log(`sample line: ${codec.encode(HEADER, layout.size)}\n`);

const results = [
  measure('codec.write (bytes into a reused buffer)', eachRecord, writeInto(memoryWriter())),
  measure('codec.write + LineSink (file)', eachRecord, writeInto(new LineSink(spool('sink')))),
  measure('RingReader.drain + codec.write + LineSink', drainFakeRing(), writeInto(new LineSink(spool('drain')))),
  measure('codec.encode (string, snapshots)', eachRecord, { onRecord: (o, n) => void codec.encode(o, n) }),
];
for (const name of ['sink', 'drain']) fs.rmSync(spool(name), { force: true });

console.log('| case | events/s | ring MB/s | NDJSON MB/s | ns/event |');
console.log('|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.name} | ${(r.eventsPerS / 1e6).toFixed(2)} M | ${r.ringMBps.toFixed(0)} | ${r.ndjsonMBps.toFixed(0)} | ${r.nsPerEvent.toFixed(0)} |`);
}
const out = path.join(ROOT, 'bench/results/micro-ring.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, records: TOTAL, recordBytes: stride, results }, null, 2) + '\n');
console.log(`\nwrote ${path.relative(process.cwd(), out)}`);

// ---------------------------------------------------------------------------

function fillRecords(buf: Buffer, layout: BtfStruct): void {
  const bootNs = process.hrtime.bigint();
  for (let i = 0; i < perPass; i++) {
    const at = i * stride;
    buf.writeUInt32LE(layout.size, at); // committed: no busy or discard bit
    writeStruct(buf, at + HEADER, layout, {
      timestamp: bootNs + BigInt(i * 4500),
      cgroup_id: 4242,
      mntns_id: 4026531841,
      pid: 31337,
      tid: 31337,
      uid: 0,
      gid: 0,
      ret: 3,
      flags: 0o100000,
      mode: 0,
      comm: 'open_loop',
      path: opts.path,
    });
  }
}

type Handler = (offset: number, length: number) => void;

/** One pass over every record, straight from the buffer (no reader). */
function eachRecord(onRecord: Handler): void {
  for (let i = 0; i < perPass; i++) onRecord(i * stride + HEADER, layout.size);
}

/**
 * A RingReader over the synthetic buffer: the same drain code the stream
 * step runs, with the producer position at the end of the records and the
 * consumer position rewound before each pass.
 */
function drainFakeRing(): (onRecord: Handler) => void {
  const consumerPos = new BigUint64Array(1);
  const producerPos = new BigUint64Array([BigInt(perPass * stride)]);
  // Object.create's `any` lets the private fields be set; the result is used as a RingReader
  const reader: RingReader = Object.assign(Object.create(RingReader.prototype), {
    buf: ring,
    dv: new DataView(ring.buffer, ring.byteOffset, ring.byteLength),
    consumerPos,
    producerPos,
    headers: new Int32Array(ring.buffer, ring.byteOffset, ring.byteLength / 4),
    mask: RING_BYTES - 1,
    size: RING_BYTES,
  });
  return (onRecord) => {
    consumerPos[0] = 0n;
    const n = reader.drain(onRecord);
    if (n !== perPass) {
      throw new Error(`fake ring: drain saw ${n} of ${perPass} records; has RingReader's layout changed? (bench/micro-ring.ts drainFakeRing)`);
    }
  };
}

/** A writer that starts over when full: the codec's cost without any I/O. */
function memoryWriter(): ByteWriter & { reserve(bytes: number): void } {
  return {
    chunk: Buffer.allocUnsafe(1 << 20),
    used: 0,
    reserve(bytes) {
      if (this.used + bytes > this.chunk.length) this.used = 0;
    },
  };
}

interface Consumer {
  onRecord: Handler;
  /** once per pass, as StreamSession flushes once per drain batch */
  flush?(): void;
  close?(): void;
}

/** What StreamSession does per record: make room for a line, write it. */
function writeInto(w: ByteWriter & { reserve(bytes: number): void; flush?(): void; close?(): void }): Consumer {
  const { write, maxLineBytes } = codec;
  return {
    onRecord: (offset, length) => {
      w.reserve(maxLineBytes);
      write(offset, length, w);
    },
    flush: w.flush?.bind(w),
    close: w.close?.bind(w),
  };
}

/** Run `pass` until TOTAL records went through, after one warm-up pass. */
function measure(name: string, pass: (onRecord: Handler) => void, consumer: Consumer) {
  pass(consumer.onRecord); // let V8 optimise the generated code first
  consumer.flush?.();
  const passes = Math.ceil(TOTAL / perPass);
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) {
    pass(consumer.onRecord);
    consumer.flush?.();
  }
  consumer.close?.();
  const s = (performance.now() - t0) / 1000;
  const events = passes * perPass;
  return {
    name,
    events,
    seconds: s,
    eventsPerS: events / s,
    ringMBps: (events * stride) / s / 1e6,
    ndjsonMBps: (passes * lineBytesPerPass) / s / 1e6,
    nsPerEvent: (s * 1e9) / events,
  };
}
