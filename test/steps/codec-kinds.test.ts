/**
 * The decode kinds no gadget of the registry uses yet (ipaddr, port, enum,
 * flags, u64str, derive), over a hand-made struct's BTF: exact values, then
 * the same properties as every gadget's codec (JSON, equal to decode(), no
 * longer than maxLineBytes) over random bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Btf } from '../../src/ebpf/btf.ts';
import { buildCodec } from '../../src/steps/codec.ts';
import { parseFilter } from '../../src/steps/filter.ts';
import { CAPABILITIES, MOUNT_FLAGS, SIGNALS } from '../../src/steps/names/index.ts';
import type { FieldSpec, GadgetDefinition } from '../../src/steps/types.ts';
import { BtfWriter } from '../fixtures/btf.ts';
import { dataView, garbage, writeStruct, type MemberValue } from '../fixtures/events.ts';

// struct net_event { __u8 saddr[16]; __u32 daddr[4]; __u64 big; __u32 sig; __u32 mflags; __u16 family; __u16 sport; __u16 dfamily; __s16 cap; }
function layout() {
  const w = new BtfWriter();
  const u8 = w.int('unsigned char', 1);
  const u16 = w.int('unsigned short', 2);
  const s16 = w.int('short', 2, true);
  const u32 = w.int('unsigned int', 4);
  const u64 = w.int('unsigned long long', 8);
  const bytes16 = w.array(u8, u32, 16);
  const words4 = w.array(u32, u32, 4);
  w.struct('net_event', 56, [
    ['saddr', bytes16, 0], ['daddr', words4, 128], ['big', u64, 256], ['sig', u32, 320], ['mflags', u32, 352],
    ['family', u16, 384], ['sport', u16, 400], ['dfamily', u16, 416], ['cap', s16, 432],
  ]);
  return new Btf(w.build()).struct('net_event');
}

const fields: FieldSpec[] = [
  { name: 'saddr', type: 'string', decode: 'ipaddr', family: 'family', description: '' },
  { name: 'daddr', type: 'string', decode: 'ipaddr', family: 'dfamily', description: '' },
  { name: 'sport', type: 'number', decode: 'port', description: '' },
  { name: 'big', type: 'string', decode: 'u64str', description: '' },
  { name: 'signal', member: 'sig', type: 'number', names: SIGNALS, description: '' },
  { name: 'sig_name', member: 'sig', type: 'string', decode: 'enum', names: SIGNALS, description: '' },
  { name: 'cap', type: 'string', decode: 'enum', names: CAPABILITIES, description: '' },
  { name: 'mflags', type: 'string', decode: 'flags', names: MOUNT_FLAGS, description: '' },
  { name: 'fatal', type: 'boolean', decode: 'derive', derive: { from: ['signal'], fn: (s: number) => s === 9 || s === 6 }, description: '' },
  { name: 'summary', type: 'string', decode: 'derive', derive: { from: ['sig_name', 'sport'], fn: (n: string, p: number) => `${n}@${p}`, maxBytes: 64 }, description: '' },
];

const def: GadgetDefinition = {
  id: 'test/kinds', description: '', mode: 'stream', object: 'none.bpf.o', struct: 'net_event', fields, kernelFilters: {}, requires: [],
};

const LAYOUT = layout();
const AT = 8;

function codecOver(values: Record<string, MemberValue>, filter = '', spec = def) {
  const buf = garbage(AT + LAYOUT.size + 16);
  writeStruct(buf, AT, LAYOUT, values);
  return { buf, codec: buildCodec(spec, LAYOUT, dataView(buf), parseFilter(filter), { bootToWallNs: 0n }) };
}

const ip6 = (hex: string) => Buffer.from(hex.replace(/:/g, ''), 'hex');

describe('decode kinds', () => {
  const base = { family: 2, dfamily: 10, saddr: Buffer.from([127, 0, 0, 1]), daddr: ip6('0000:0000:0000:0000:0000:0000:0000:0001'), sport: 0, big: 0n, sig: 9, mflags: 0, cap: 12 };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the fields' values, read by name
  const decode = (values: Record<string, MemberValue>, filter?: string): Record<string, any> | undefined => {
    const { codec } = codecOver({ ...base, ...values }, filter);
    const line = codec.encode(AT, LAYOUT.size);
    assert.deepEqual(line === undefined ? undefined : JSON.parse(line), codec.decode(AT, LAYOUT.size));
    return codec.decode(AT, LAYOUT.size);
  };
  const event = (values: Record<string, MemberValue> = {}) => decode(values)!;
  // writeStruct cannot write u16 arrays or __u32[4] from numbers; byte buffers it is
  const withPort = (port: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(port);
    return b.readUInt16LE(); // stored in network order, read by writeStruct as little-endian
  };

  test('ipaddr: IPv4, RFC 5952 IPv6, v4-mapped, family 0', () => {
    assert.equal(event({}).saddr, '127.0.0.1');
    assert.equal(event({}).daddr, '::1');
    const cases: [string, string][] = [
      ['0000:0000:0000:0000:0000:ffff:7f00:0001', '::ffff:127.0.0.1'],
      ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
      ['2001:0db8:0000:0001:0001:0001:0001:0001', '2001:db8:0:1:1:1:1:1'], // a single zero group is not ::
      ['2001:0000:0000:0001:0000:0000:0000:0001', '2001:0:0:1::1'], // the longer run wins
      ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'], // the first of equal runs
      ['0000:0000:0000:0000:0000:0000:0000:0000', '::'],
      ['fe80:0000:0000:0000:0000:0000:0000:0000', 'fe80::'],
      ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ];
    for (const [hex, text] of cases) assert.equal(event({ daddr: ip6(hex) }).daddr, text, hex);
    assert.equal(event({ saddr: Buffer.from([255, 255, 10, 0]) }).saddr, '255.255.10.0');
    assert.equal(event({ family: 0 }).saddr, '');
  });

  test('port: network byte order', () => {
    assert.equal(event({ sport: withPort(8080) }).sport, 8080);
    assert.equal(event({ sport: withPort(65535) }).sport, 65535);
  });

  test('u64str: exact above 2^53', () => {
    assert.equal(event({ big: 2n ** 64n - 1n }).big, '18446744073709551615');
    assert.equal(event({ big: 2n ** 53n + 1n }).big, '9007199254740993');
  });

  test('enum: names, unknown values as decimal text; a number field keeps its number', () => {
    assert.deepEqual([event({}).signal, event({}).sig_name, event({}).cap], [9, 'SIGKILL', 'CAP_NET_ADMIN']);
    assert.equal(event({ sig: 34 }).sig_name, 'SIGRTMIN+2');
    assert.equal(event({ sig: 200 }).sig_name, '200');
    assert.equal(event({ cap: -1 }).cap, '-1');
  });

  test('flags: set bits by name, ascending, unknown bits as hex, 0 as ""', () => {
    assert.equal(event({ mflags: 0 }).mflags, '');
    assert.equal(event({ mflags: 1 | 4096 | 16384 }).mflags, 'MS_RDONLY|MS_BIND|MS_REC');
    assert.equal(event({ mflags: 2 | 512 }).mflags, 'MS_NOSUID|0x200');
    assert.equal(event({ mflags: 0xffffffff }).mflags.split('|').length, 32);
  });

  test('derive: typed functions over decoded values, derives of derives', () => {
    const e = event({ sport: withPort(22) });
    assert.deepEqual([e.fatal, e.summary], [true, 'SIGKILL@22']);
    assert.equal(event({ sig: 15 }).fatal, false);
  });

  test('filters read every kind', () => {
    const keeps = (filter: string, values: Record<string, MemberValue> = {}) => decode(values, filter) !== undefined;
    assert.equal(keeps('signal==SIGKILL'), true);
    assert.equal(keeps('signal==SIGTERM'), false);
    assert.equal(keeps('sig_name==SIGKILL,cap==CAP_NET_ADMIN,saddr==127.0.0.1,daddr==::1'), true);
    assert.equal(keeps('sport==8080', { sport: withPort(8080) }), true);
    assert.equal(keeps('mflags~MS_BIND', { mflags: 4096 }), true);
    assert.equal(keeps('fatal==true,summary~^SIGKILL@'), true);
    assert.equal(keeps('big==18446744073709551615', { big: 2n ** 64n - 1n }), true);
  });

  test('a spec the member cannot hold is an error naming the field', () => {
    const bad = (f: FieldSpec, message: RegExp) => assert.throws(() => codecOver(base, '', { ...def, fields: [f] }), message);
    bad({ name: 'sig', type: 'string', decode: 'ipaddr', family: 'family', description: '' }, /test\/kinds: field sig: ipaddr needs a 16-byte array/);
    bad({ name: 'saddr', type: 'string', decode: 'ipaddr', description: '' }, /field saddr: family member \(not given\) is not in struct net_event/);
    bad({ name: 'sig', type: 'number', decode: 'port', description: '' }, /field sig: port needs a 16-bit integer member/);
    bad({ name: 'sig', type: 'string', decode: 'enum', description: '' }, /field sig: decode enum needs a names table/);
    bad({ name: 'sig', type: 'number', decode: 'enum', names: SIGNALS, description: '' }, /field sig: decode enum gives a string, the field says number/);
    bad({ name: 'sig', type: 'string', decode: 'flags', names: { 3: 'MASK' }, description: '' }, /flags names single bits; MASK is 0x3/);
    bad({ name: 'x', type: 'string', decode: 'derive', derive: { from: [], fn: () => 'x' }, description: '' }, /field x: a string derive needs derive.maxBytes/);
    bad({ name: 'x', type: 'number', decode: 'derive', derive: { from: ['later'], fn: Number }, description: '' }, /field x: derives from "later", which is not a field declared before it/);
  });

  test('a derived value longer than its maxBytes fails the write, naming the field', () => {
    const spec = { ...def, fields: [...fields.slice(0, 6), { name: 'long', type: 'string' as const, decode: 'derive' as const, derive: { from: ['sig_name'], fn: (s: string) => s.repeat(10), maxBytes: 20 }, description: '' }] };
    const { codec } = codecOver(base, '', spec);
    assert.throws(() => codec.encode(AT, LAYOUT.size), /test\/kinds: field long: derived value is 72 bytes of JSON, more than its derive.maxBytes 20/);
  });

  test('properties over random records: JSON, equal to decode(), within maxLineBytes', () => {
    const filters = ['', ...fields.map((f) => `${f.name}~`)];
    const buf = garbage(AT + LAYOUT.size + 16);
    const codecs = filters.map((filter) => buildCodec(def, LAYOUT, dataView(buf), parseFilter(filter), { bootToWallNs: 0n }));
    const chunk = Buffer.alloc(1 << 14);
    const family = fc.constantFrom(0, 2, 10, 7);
    fc.assert(fc.property(fc.uint8Array({ minLength: LAYOUT.size, maxLength: LAYOUT.size }), family, family, (bytes, f1, f2) => {
      buf.set(bytes, AT);
      buf.writeUInt16LE(f1, AT + 48);
      buf.writeUInt16LE(f2, AT + 52);
      for (const codec of codecs) {
        const w = { chunk, used: 0 };
        assert.ok(codec.write(AT, LAYOUT.size, w));
        assert.ok(w.used <= codec.maxLineBytes, `${w.used} > ${codec.maxLineBytes}`);
        assert.deepEqual(JSON.parse(chunk.toString('utf8', 0, w.used - 1)), codec.decode(AT, LAYOUT.size));
      }
    }), { numRuns: 300 });
  });
});
