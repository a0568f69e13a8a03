import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { Btf } from '../../src/ebpf/btf.ts';
import { BpfObject } from '../../src/ebpf/object.ts';
import { native, view } from '../../src/ebpf/libbpf.ts';
import { buildCodec } from '../../src/steps/codec.ts';
import { gadgets } from '../../src/steps/index.ts';
import { rowShape } from '../../src/steps/modes/interval.ts';
import { buildPacketCodec } from '../../src/steps/modes/packet.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { BtfWriter } from '../fixtures/btf.ts';
import { objectPath, REPO } from '../helpers/kernel.ts';
import { tempDir } from '../helpers/session.ts';

describe('Btf over a hand-made blob', () => {
  // struct ev { __u32 a; enum color c; __s64 b; char name[16]; struct inner in; void *p; union u u; }
  // const volatile __u32 targ_x; const volatile __s64 big; in .rodata
  function fixture(at = 0) {
    const w = new BtfWriter();
    const u32 = w.int('unsigned int', 4);
    const s64 = w.int('long long', 8, true);
    const char = w.int('char', 1, true);
    const u32t = w.typedef('__u32', u32);
    const color = w.enum('color', [['RED', 0], ['GREEN', 1]]);
    w.funcProto(u32, [['x', u32], ['y', s64]]);
    const name = w.array(char, u32, 16);
    const inner = w.struct('inner', 8, [['x', u32, 0], ['y', u32, 32]]);
    const voidPtr = w.ptr(0);
    const u = w.union('u', 8, [['i', u32, 0], ['l', s64, 0]]);
    w.struct('ev', 56, [
      ['a', u32t, 0], ['c', color, 32], ['b', s64, 64], ['name', name, 128], ['in', inner, 256], ['p', voidPtr, 320], ['u', u, 384],
    ]);
    w.struct('bits', 4, [['lo', u32, 3 << 24 | 0], ['hi', u32, 29 << 24 | 3]], true);
    const targX = w.variable('targ_x', w.const(w.volatile(u32t)));
    const big = w.variable('big', w.const(w.volatile(s64)));
    w.datasec('.rodata', 16, [[targX, 0, 4], [big, 8, 8]]);
    return w.build(at);
  }

  test('struct members with byte offsets and resolved types', () => {
    const s = new Btf(fixture()).struct('ev');
    assert.equal(s.name, 'ev');
    assert.equal(s.size, 56);
    assert.deepEqual(s.members, [
      { name: 'a', offset: 0, type: { kind: 'int', size: 4, signed: false } },
      { name: 'c', offset: 4, type: { kind: 'int', size: 4, signed: false } },
      { name: 'b', offset: 8, type: { kind: 'int', size: 8, signed: true } },
      { name: 'name', offset: 16, type: { kind: 'array', elem: { kind: 'int', size: 1, signed: true }, nelems: 16, size: 16 } },
      { name: 'in', offset: 32, type: { kind: 'struct', name: 'inner', size: 8 } },
      { name: 'p', offset: 40, type: { kind: 'other', size: 8 } },
      { name: 'u', offset: 48, type: { kind: 'struct', name: 'u', size: 8 } },
    ]);
  });

  test('a blob inside a larger buffer reads the same', () => {
    assert.deepEqual(new Btf(fixture(13)).struct('ev'), new Btf(fixture()).struct('ev'));
  });

  test('data section variables, with const and volatile peeled off', () => {
    const vars = new Btf(fixture()).variables('.rodata');
    assert.deepEqual([...vars.values()], [
      { name: 'targ_x', offset: 0, size: 4, type: { kind: 'int', size: 4, signed: false } },
      { name: 'big', offset: 8, size: 8, type: { kind: 'int', size: 8, signed: true } },
    ]);
    assert.equal(new Btf(fixture()).variables('.bss').size, 0);
  });

  test('a missing struct is named', () => {
    assert.throws(() => new Btf(fixture()).struct('nope'), /struct nope is not in the object's BTF/);
  });

  test('bitfields are refused, naming the member', () => {
    assert.throws(() => new Btf(fixture()).struct('bits'), /struct bits\.hi: bitfields are not supported/);
  });

  test('data that is not BTF is refused', () => {
    const blob = fixture();
    blob[0] = 0;
    assert.throws(() => new Btf(blob), /not BTF data \(bad magic\)/);
  });
});

const defs = Object.values(gadgets) as GadgetDefinition[];

/** The compiled objects' BTF: open without load (no root needed). */
function objectBtf(def: GadgetDefinition): Btf {
  const obj = BpfObject.open(objectPath(def));
  try {
    return obj.btf;
  } finally {
    obj.close();
  }
}

describe('event layouts in the compiled objects', () => {
  // profile gadgets build their rows in JS from the maps they read (src/gadgets/profile/): nothing is
  // decoded from a struct, so this check has nothing to check there (their own tests read the maps)
  for (const def of defs.filter((d) => d.mode !== 'profile')) {
    test(`${def.id}: every field decodes from a member of struct ${def.struct}`, () => {
      // buildCodec checks each field against its kind (member type, length/family members, derive order)
      // interval gadgets decode their map's key and value side by side
      const { layout, def: decoded } = def.mode === 'interval' ? rowShape(def, objectBtf(def)) : { layout: objectBtf(def).struct(def.struct), def };
      const buf = Buffer.alloc(layout.size);
      const ring = { buf, dv: new DataView(buf.buffer) };
      // packet gadgets parse their own fields from the bytes: the shape checks the members it reads
      assert.doesNotThrow(() => (def.mode === 'packet' ? buildPacketCodec(def, layout, ring, [], { bootToWallNs: 0n }, {}) : buildCodec(decoded, layout, ring, [], { bootToWallNs: 0n })));
    });

    for (const struct of def.mode === 'interval' ? [def.interval.key, def.interval.value] : [def.struct])
    test(`${def.id}: struct ${struct} in the object equals the C header`, (t) => {
      const header = path.join(REPO, 'bpf', def.object.replace(/\.bpf\.o$/, '.h'));
      const layout = objectBtf(def).struct(struct);
      const s = `struct ${struct}`;
      const src = [
        '#include <linux/types.h>', '#include <stddef.h>', '#include <stdio.h>', `#include "${header}"`,
        'int main(void) {',
        `  printf("{\\"size\\":%zu,\\"offsets\\":{", sizeof(${s}));`,
        ...layout.members.map((m, i) => `  printf("${i ? ',' : ''}\\"${m.name}\\":%zu", offsetof(${s}, ${m.name}));`),
        '  printf("}}\\n");',
        '  return 0;',
        '}',
      ].join('\n');
      const dir = tempDir(t);
      fs.writeFileSync(path.join(dir, 'layout.c'), src);
      execFileSync('clang', ['-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')], { stdio: 'pipe' });
      const c = JSON.parse(execFileSync(path.join(dir, 'layout')).toString()) as { size: number; offsets: Record<string, number> };
      assert.equal(layout.size, c.size, `${def.id}: sizeof(${s}) is ${c.size} in ${header}, ${layout.size} in ${def.object}`);
      for (const m of layout.members) {
        assert.equal(m.offset, c.offsets[m.name], `${def.id}: ${s}.${m.name} is at ${c.offsets[m.name]} in ${header}, ${m.offset} in ${def.object}`);
      }
    });

    test(`${def.id}: the object has the constants its filters and params set`, () => {
      const rodata = objectBtf(def).variables('.rodata');
      for (const [field, kf] of Object.entries(def.kernelFilters)) {
        const v = rodata.get(kf.constant);
        assert.ok(v, `${def.id}: kernel filter ${field}: ${def.object} has no .rodata constant ${kf.constant}`);
        assert.equal(v.size, kf.bytes, `${def.id}: kernel filter ${field}: ${kf.constant} is ${v.size} bytes in ${def.object}, the table says ${kf.bytes}`);
        assert.ok(def.fields.some((f) => f.name === field), `${def.id}: kernel filter ${field} is not one of its fields`);
      }
      for (const name of ['targ_cgroup_id', 'targ_cgroup_level', ...Object.keys(def.constants?.({}) ?? {})]) {
        assert.ok(rodata.has(name), `${def.id}: ${def.object} has no .rodata constant ${name}`);
      }
    });
  }

  test('BpfObject reads the same BTF as libbpf parses from the ELF', () => {
    const n = native();
    for (const def of defs) {
      const btf = n.btf__parse_elf(objectPath(def), null);
      assert.ok(btf, `btf__parse_elf ${def.object} failed`);
      try {
        const size = [0];
        const raw = n.btf__raw_data(btf, size);
        const bytes = new Uint8Array(view(raw, size[0])).slice();
        assert.deepEqual(new Btf(bytes).struct(def.struct), objectBtf(def).struct(def.struct), def.id);
      } finally {
        n.btf__free(btf);
      }
    }
  });
});
