/**
 * The packet gadgets' codecs under hostile packets (issue 5: every gadget ×
 * every field): DNS messages whose names are built from escape-heavy labels
 * and compression pointers, and mutated TLS ClientHellos, wrapped in IPv4/UDP
 * or TCP as the BPF side captures them. Every line write() appends is JSON,
 * equals decode()'s object and fits maxLineBytes. No root needed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { BtfStruct } from '../../src/ebpf/btf.ts';
import { BpfObject } from '../../src/ebpf/object.ts';
import { parseFilter } from '../../src/steps/filter.ts';
import { gadgets } from '../../src/steps/index.ts';
import { buildPacketCodec } from '../../src/steps/modes/packet.ts';
import type { GadgetDefinition, PacketGadget } from '../../src/steps/types.ts';
import { dataView } from '../fixtures/events.ts';
import { objectPath } from '../helpers/kernel.ts';

const AT = 16;

function layoutOf(def: PacketGadget): BtfStruct {
  const obj = BpfObject.open(objectPath(def));
  try {
    return obj.btf.struct(def.struct);
  } finally {
    obj.close();
  }
}

/** IPv4 + UDP (port 53) or TCP (port 443) around a payload, as captured from the IP header on */
function wrap(payload: Uint8Array, proto: 'udp' | 'tcp'): Buffer {
  const l4 = proto === 'udp' ? 8 : 20;
  const b = Buffer.alloc(20 + l4 + payload.length);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b[9] = proto === 'udp' ? 17 : 6;
  b.set([127, 0, 0, 1], 12);
  b.set([127, 0, 0, 53], 16);
  b.writeUInt16BE(40000, 20);
  b.writeUInt16BE(proto === 'udp' ? 53 : 443, 22);
  if (proto === 'udp') b.writeUInt16BE(8 + payload.length, 24);
  else b[32] = 5 << 4; // data offset: 5 words
  b.set(payload, 20 + l4);
  return b;
}

const label = fc.uint8Array({ minLength: 1, maxLength: 63 }).map((l) => l.map((x) => [0x01, 0x22, 0x5c, 0x2e, 0x7f, 0xff, 0x41, 0x00][x % 8]));

/**
 * A DNS message: header, a question whose name is labels and maybe a pointer,
 * then answers whose names point back anywhere (loops, forward, chains).
 */
const dnsMessage = fc
  .record({
    id: fc.integer({ min: 0, max: 0xffff }),
    flags: fc.integer({ min: 0, max: 0xffff }),
    labels: fc.array(label, { maxLength: 12 }),
    answers: fc.array(fc.record({ ptr: fc.integer({ min: 0, max: 0x3fff }), type: fc.constantFrom(1, 28, 5, 255), rdata: fc.uint8Array({ maxLength: 20 }) }), { maxLength: 30 }),
    tail: fc.uint8Array({ maxLength: 64 }),
    // the question's name ends in its root label, or in a pointer anywhere (loops included)
    end: fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }),
  })
  .map(({ id, flags, labels, answers, tail, end }) => {
    const parts: number[] = [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, 1, 0, answers.length, 0, 0, 0, 0];
    for (const l of labels) parts.push(l.length, ...l);
    if (end === undefined) parts.push(0, 0, 1, 0, 1);
    else parts.push(0xc0 | (end >> 8), end & 0xff, 0, 1, 0, 1);
    for (const a of answers) parts.push(0xc0 | (a.ptr >> 8), a.ptr & 0xff, 0, a.type, 0, 1, 0, 0, 0, 60, 0, a.rdata.length, ...a.rdata);
    return Uint8Array.from([...parts, ...tail]);
  });

const clientHello = fc
  .record({ name: fc.uint8Array({ maxLength: 300 }).map((l) => l.map((x) => [0x01, 0x22, 0x5c, 0x7f, 0xff, 0x61][x % 6])), edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }) })
  .map(({ name, edits }) => {
    const sni = [0, 0, (name.length + 5) >> 8, (name.length + 5) & 0xff, (name.length + 3) >> 8, (name.length + 3) & 0xff, 0, name.length >> 8, name.length & 0xff, ...name];
    const body = [3, 3, ...new Array(32).fill(7), 0, 0, 2, 0x13, 0x01, 1, 0, sni.length >> 8, sni.length & 0xff, ...sni];
    const hs = [1, 0, body.length >> 8, body.length & 0xff, ...body];
    const rec = [0x16, 3, 1, hs.length >> 8, hs.length & 0xff, ...hs];
    for (const [at, v] of edits) rec[at % rec.length] = v;
    return Uint8Array.from(rec);
  });

for (const def of (Object.values(gadgets) as GadgetDefinition[]).filter((d): d is PacketGadget => d.mode === 'packet')) {
  test(`${def.id}: every line from hostile packets is JSON, equals decode() and fits maxLineBytes`, () => {
    const layout = layoutOf(def);
    const member = (name: string) => layout.members.find((m) => m.name === name)!;
    const [data, len] = [member('data'), member('len')];
    const buf = Buffer.alloc(AT + layout.size + 64);
    const view = dataView(buf);
    const clock = { bootToWallNs: 1_700_000_000_000_000_000n };
    const filters = ['', ...def.fields.map((f) => `${f.name}~`)];
    const chunk = Buffer.alloc(1 << 17);
    const payloads = def.id === 'trace/dns' ? dnsMessage.map((m) => wrap(m, 'udp')) : clientHello.map((m) => wrap(m, 'tcp'));
    let written = 0;
    fc.assert(
      fc.property(payloads, fc.constantFrom(...filters), (packet, filter) => {
        // a fresh codec per case: DNS latency pairs queries and answers across events
        const codec = buildPacketCodec(def, layout, view, parseFilter(filter), clock, {});
        buf.fill(0);
        const n = Math.min(packet.length, data.type.size);
        buf.set(packet.subarray(0, n), AT + data.offset);
        buf.writeUInt32LE(n, AT + len.offset);
        const w = { chunk, used: 0 };
        if (!codec.write(AT, layout.size, w)) return;
        written++;
        assert.ok(w.used <= codec.maxLineBytes, `${w.used} bytes > maxLineBytes ${codec.maxLineBytes} under "${filter}"`);
        assert.equal(chunk[w.used - 1], 0x0a);
        const line = chunk.toString('utf8', 0, w.used - 1);
        assert.deepEqual(JSON.parse(line), JSON.parse(JSON.stringify(buildPacketCodec(def, layout, view, parseFilter(filter), clock, {}).decode(AT, layout.size))));
      }),
      { numRuns: 3000 },
    );
    assert.ok(written > 100, `only ${written} hostile packets made an event: the generator misses the parser`);
  });
}
