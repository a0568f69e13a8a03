/**
 * Property test of every gadget's codec (issue 5): for each field, records
 * whose member holds escape-heavy, invalid UTF-8 or maximum-length bytes (the
 * rest of the record random), with and without a filter that reads the field:
 * every line write() appends is JSON, equals decode()'s object and is no
 * longer than maxLineBytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { BtfMember, BtfStruct } from '../../src/ebpf/btf.ts';
import { BpfObject } from '../../src/ebpf/object.ts';
import { buildCodec } from '../../src/steps/codec.ts';
import { parseFilter } from '../../src/steps/filter.ts';
import { gadgets } from '../../src/steps/index.ts';
import { rowShape } from '../../src/steps/modes/interval.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { dataView, garbage } from '../fixtures/events.ts';
import { objectPath } from '../helpers/kernel.ts';

const AT = 16;
const RUNS = 40;

/** The layout and fields the gadget's codec decodes (interval gadgets: their map's key and value side by side). */
function shapeOf(def: GadgetDefinition): { layout: BtfStruct; def: GadgetDefinition } {
  const obj = BpfObject.open(objectPath(def));
  try {
    return def.mode === 'interval' ? rowShape(def, obj.btf) : { layout: obj.btf.struct(def.struct), def };
  } finally {
    obj.close();
  }
}

/** bytes JSON must escape (control characters, quote, backslash) and DEL */
const escapeHeavy = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => b.map((x) => [0x01, 0x0a, 0x1f, 0x22, 0x5c, 0x7f, 0x1b][x % 7]));
/** lone continuation bytes, truncated sequences, overlongs */
const invalidUtf8 = (n: number) => fc.uint8Array({ minLength: 1, maxLength: n }).map((b) => b.map((x) => (x % 2 ? 0x80 | (x & 0x3f) : 0xc0 | (x & 0x1f)) || 0xff));
/** the member full, no NUL: a string that ends at the array's end */
const maxLength = (n: number) => fc.uint8Array({ minLength: n, maxLength: n, min: 1 });

function contents(m: BtfMember) {
  const n = m.type.size;
  return fc.oneof(escapeHeavy(n), invalidUtf8(n), maxLength(n), fc.uint8Array({ minLength: n, maxLength: n }));
}

/** a filter that reads the field and keeps every event: an empty regex matches any text */
const readingFilter = (field: string) => `${field}~`;

// packet gadgets parse their fields from the captured bytes: packet-codec.property.test.ts;
// profile gadgets build their rows from map reads (src/gadgets/profile/), nothing is decoded
for (const gadget of (Object.values(gadgets) as GadgetDefinition[]).filter((d) => d.mode !== 'packet' && d.mode !== 'profile')) {
  describe(`${gadget.id} codec properties`, () => {
    const { layout, def } = shapeOf(gadget);
    const members = new Map(layout.members.map((m) => [m.name, m]));
    const buf = garbage(AT + layout.size + 64);
    const view = dataView(buf);
    const clock = { bootToWallNs: 1_700_000_000_000_000_000n };
    const codecs = ['', ...def.fields.map((f) => readingFilter(f.name))].map((filter) => ({ filter, codec: buildCodec(def, layout, view, parseFilter(filter), clock) }));
    const chunk = Buffer.alloc(1 << 16);

    for (const f of def.fields) {
      const m = members.get(f.member ?? f.name);
      test(`field ${f.name}: lines are JSON, equal decode() and fit maxLineBytes`, () => {
        const record = fc.record({
          base: fc.uint8Array({ minLength: layout.size, maxLength: layout.size }),
          member: m ? contents(m) : fc.constant(new Uint8Array(0)),
          // variable-length members: the length member says how much is used, or anything
          exactLength: fc.boolean(),
        });
        fc.assert(fc.property(record, ({ base, member, exactLength }) => {
          buf.set(base, AT);
          if (m) {
            buf.fill(0, AT + m.offset, AT + m.offset + m.type.size);
            buf.set(member, AT + m.offset);
            const len = f.length ? members.get(f.length) : undefined;
            if (len && exactLength) buf.writeUInt32LE(member.length, AT + len.offset);
          }
          for (const { filter, codec } of codecs.filter((c) => c.filter === '' || c.filter === readingFilter(f.name))) {
            const w = { chunk, used: 0 };
            assert.ok(codec.write(AT, layout.size, w), `"${filter}" keeps every event`);
            assert.ok(w.used <= codec.maxLineBytes, `${w.used} bytes > maxLineBytes ${codec.maxLineBytes} under "${filter}"`);
            assert.equal(chunk[w.used - 1], 0x0a, 'the line ends with its newline');
            const line = chunk.toString('utf8', 0, w.used - 1);
            assert.deepEqual(JSON.parse(line), codec.decode(AT, layout.size), `under "${filter}": ${line}`);
          }
        }), { numRuns: RUNS });
      });
    }
  });
}
