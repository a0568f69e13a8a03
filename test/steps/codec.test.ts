import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BtfStruct } from '../../src/ebpf/btf.ts';
import { BpfObject } from '../../src/ebpf/object.ts';
import { parseFilter } from '../../src/steps/filter.ts';
import { buildCodec, type Codec } from '../../src/steps/codec.ts';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { dataView, garbage, rfc3339, writeStruct, type MemberValue } from '../fixtures/events.ts';
import { objectPath } from '../helpers/kernel.ts';

function layoutOf(def: GadgetDefinition): BtfStruct {
  const obj = BpfObject.open(objectPath(def));
  try {
    return obj.btf.struct(def.struct);
  } finally {
    obj.close();
  }
}

const openDef: GadgetDefinition = gadgets['trace/open'];
const execDef: GadgetDefinition = gadgets['trace/exec'];
const procDef: GadgetDefinition = gadgets['snapshot/process'];
const openLayout = layoutOf(openDef);
const execLayout = layoutOf(execDef);
const procLayout = layoutOf(procDef);

/** Records start here, not at 0, so a decoder ignoring its offset argument is caught. */
const AT = 24;
const O_CLOEXEC = 0o2000000;
const BOOT_TO_WALL = 1_700_000_000_000_000_000n; // 2023-11-14T22:13:20Z at boot

interface Fixture {
  codec: Codec;
  /** the record's length, as the ring buffer gives it */
  length: number;
}

function fixture(
  def: GadgetDefinition, layout: BtfStruct, values: Record<string, MemberValue>,
  opts: { filter?: string; bootToWallNs?: bigint; length?: number } = {},
): Fixture {
  const buf = garbage(AT + layout.size + 64);
  writeStruct(buf, AT, layout, values);
  const codec = buildCodec(def, layout, dataView(buf), parseFilter(opts.filter ?? ''), { bootToWallNs: opts.bootToWallNs ?? BOOT_TO_WALL });
  return { codec, length: opts.length ?? layout.size };
}

/** write() into a buffer far larger than maxLineBytes, so an overrun shows instead of being cut off */
function writeLine(f: Fixture): string {
  const w = { chunk: Buffer.alloc(1 << 16), used: 0 };
  assert.ok(f.codec.write(AT, f.length, w), 'the filter kept the event');
  return w.chunk.toString('utf8', 0, w.used);
}

function encode(f: Fixture): Record<string, unknown> | undefined {
  const line = f.codec.encode(AT, f.length);
  return line === undefined ? undefined : JSON.parse(line);
}

const openEvent = {
  timestamp: 5_123_456_789n, cgroup_id: 12345n, mntns_id: 4026531840n, pid: 4242, tid: 4243, uid: 1000, gid: 100,
  ret: 3, flags: O_CLOEXEC, mode: 0o644, comm: 'cat', path: '/etc/hosts',
};

/** where args starts: an exec record's length is this plus args_size */
function argsEnd(): number {
  return execLayout.members.find((m) => m.name === 'args')!.offset;
}

function execEvent(args: string[] | Buffer, extra: Record<string, MemberValue> = {}): Record<string, MemberValue> {
  const bytes = Buffer.isBuffer(args) ? args : Buffer.from(args.map((a) => `${a}\0`).join(''));
  return {
    timestamp: 1_000_000_000n, cgroup_id: 1n, mntns_id: 4026531832n, pid: 100, tid: 100, ppid: 1, uid: 0, gid: 0, ret: 0,
    args_count: Buffer.isBuffer(args) ? 0 : args.length, args_size: bytes.length, args_truncated: 0,
    comm: 'ls', pcomm: 'bash', args: bytes, ...extra,
  };
}

describe('trace/open codec', () => {
  test('every field, in the gadget\'s order, with exact values', () => {
    const line = fixture(openDef, openLayout, openEvent).codec.encode(AT, openLayout.size)!;
    assert.equal(line, JSON.stringify({
      timestamp: '2023-11-14T22:13:25.123456789Z', pid: 4242, tid: 4243, uid: 1000, gid: 100, comm: 'cat', path: '/etc/hosts',
      flags: O_CLOEXEC, flag_names: 'O_RDONLY|O_CLOEXEC', mode: 0o644, ret: 3, fd: 3, err: 0, err_name: '', mntns_id: 4026531840, cgroup_id: 12345,
    }));
  });

  test('a negative ret is fd -1 and a positive errno', () => {
    const e = encode(fixture(openDef, openLayout, { ...openEvent, ret: -2 }));
    assert.deepEqual([e?.ret, e?.fd, e?.err, e?.err_name], [-2, -1, 2, 'ENOENT']);
  });

  test('quotes, backslashes and control characters are escaped', () => {
    const path = '/tmp/a"b\\c\nd\te\u0001f';
    const f = fixture(openDef, openLayout, { ...openEvent, path, comm: 'x"\\' });
    const line = f.codec.encode(AT, f.length)!;
    assert.doesNotMatch(line, /\n/);
    const e = JSON.parse(line);
    assert.equal(e.path, path);
    assert.equal(e.comm, 'x"\\');
  });

  test('bytes that are not UTF-8 become U+FFFD, and the line stays JSON', () => {
    const f = fixture(openDef, openLayout, {
      ...openEvent, path: Buffer.from([0x2f, 0xff, 0xfe, 0x41, 0xc3]), comm: Buffer.from([0x80, 0x62]),
    });
    const e = encode(f)!;
    assert.equal(e.path, '/\ufffd\ufffdA\ufffd');
    assert.equal(e.comm, '\ufffdb');
  });

  test('a char array without NUL ends at its size', () => {
    const e = encode(fixture(openDef, openLayout, { ...openEvent, comm: 'c'.repeat(16), path: 'p'.repeat(256) }))!;
    assert.equal(e.comm, 'c'.repeat(16));
    assert.equal(e.path, 'p'.repeat(256));
  });

  test('timestamps carry nanoseconds into seconds', () => {
    const e = encode(fixture(openDef, openLayout, { ...openEvent, timestamp: 999_900_000_000n }, { bootToWallNs: 1_700_000_000_200_000_000n }))!;
    assert.equal(e.timestamp, '2023-11-14T22:30:00.100000000Z');
    assert.equal(e.timestamp, rfc3339(999_900_000_000n + 1_700_000_000_200_000_000n));
  });

  test('timestamps keep nanoseconds past 2^53 ns (104 days) of uptime', () => {
    for (const boot of [2n ** 53n + 1n, 200n * 86_400n * 1_000_000_000n + 123_456_789n]) {
      const e: Record<string, unknown> = encode(fixture(openDef, openLayout, { ...openEvent, timestamp: boot }))!;
      assert.equal(e.timestamp, rfc3339(boot + BOOT_TO_WALL), `boot time ${boot} ns`);
    }
  });

  test('the user-space filter drops what does not match', () => {
    const cases: [string, boolean][] = [
      ['path~^/etc/', true], ['path~secret', false], ['comm==cat', true], ['comm==dog', false],
      ['ret>=0,pid==4242', true], ['ret<0', false], ['fd==3', true], ['err!=0', false], ['flags==0', false],
    ];
    for (const [filter, kept] of cases) {
      const f = fixture(openDef, openLayout, openEvent, { filter });
      assert.equal(f.codec.encode(AT, f.length) !== undefined, kept, `encode under ${filter}`);
      assert.equal(f.codec.decode(AT, f.length) !== undefined, kept, `decode under ${filter}`);
    }
  });

  test('decode() gives the values encode() writes', () => {
    for (const values of [
      openEvent,
      { ...openEvent, ret: -13, path: 'q"\\\n\u0000rest', comm: Buffer.from([0xff]) },
      { ...openEvent, path: 'x'.repeat(256) },
    ]) {
      const f = fixture(openDef, openLayout, values);
      assert.deepEqual(f.codec.decode(AT, f.length), JSON.parse(f.codec.encode(AT, f.length)!));
    }
  });
});

describe('trace/exec codec', () => {
  test('args from NUL-separated bytes, empty arguments kept', () => {
    const args = ['/bin/echo', 'a b', '', 'ünï', '"q"'];
    const event = execEvent(args);
    // a variable-length record: it ends after args_size bytes of args
    const f = fixture(execDef, execLayout, event, { length: argsEnd() + Number(event.args_size) });
    const e = encode(f)!;
    assert.deepEqual(e.args, args);
    assert.equal(e.args_truncated, false);
    assert.deepEqual(f.codec.decode(AT, f.length), e);
  });

  test('every field, with exact values', () => {
    const f = fixture(execDef, execLayout, execEvent(['ls', '-l'], { ret: -2, args_truncated: 1, ppid: 77, uid: 1000, gid: 1001 }));
    assert.deepEqual(encode(f), {
      timestamp: rfc3339(1_000_000_000n + BOOT_TO_WALL), pid: 100, tid: 100, ppid: 77, uid: 1000, gid: 1001, comm: 'ls', pcomm: 'bash',
      ret: -2, args: ['ls', '-l'], args_truncated: true, mntns_id: 4026531832, cgroup_id: 1,
    });
  });

  test('args end at args_size', () => {
    const bytes = Buffer.from('a\0b\0c\0');
    const e = encode(fixture(execDef, execLayout, execEvent(bytes, { args_size: 4 })))!;
    assert.deepEqual(e.args, ['a', 'b']);
    assert.deepEqual(encode(fixture(execDef, execLayout, execEvent([], { args_size: 0 })))!.args, []);
  });

  test('args never extend past the record, whatever args_size says', () => {
    const bytes = Buffer.from('a\0b c\0more\0');
    // the record is cut after "a\0b c\0"; the bytes after it are not the event's
    const short = fixture(execDef, execLayout, execEvent(bytes, { args_size: 100 }), { length: argsEnd() + 6 });
    assert.deepEqual(encode(short)!.args, ['a', 'b c']);
    // args_size beyond the array: the array's end bounds it
    const huge = fixture(execDef, execLayout, execEvent(bytes, { args_size: 1 << 20 }), { length: 1 << 20 });
    assert.ok((encode(huge)!.args as string[]).length <= 4096);
  });

  test('the user-space filter sees args, comm and the result', () => {
    const cases: [string, boolean][] = [
      ['args~-l', true], ['args==ls -l', true], ['args~^/usr', false], ['comm==ls', true],
      ['pcomm==bash,ret==0', true], ['args_truncated==true', false], ['ppid==1', true],
    ];
    for (const [filter, kept] of cases) {
      const f = fixture(execDef, execLayout, execEvent(['ls', '-l']), { filter });
      assert.equal(f.codec.encode(AT, f.length) !== undefined, kept, filter);
    }
  });
});

describe('snapshot/process codec', () => {
  test('an entry with exact values', () => {
    const f = fixture(procDef, procLayout, {
      cgroup_id: 9n, mntns_id: 4026531832n, pid: 10, tid: 11, ppid: 1, uid: 65534, gid: 65534, comm: 'sleep',
    });
    assert.deepEqual(encode(f), { pid: 10, ppid: 1, tid: 11, comm: 'sleep', uid: 65534, gid: 65534, mntns_id: 4026531832, cgroup_id: 9 });
  });
});

describe('buildCodec', () => {
  test('a field without a struct member is named', () => {
    const def = { ...openDef, fields: [...openDef.fields, { name: 'inode', type: 'number' as const, description: 'x' }] };
    assert.throws(() => fixture(def, openLayout, openEvent), /trace\/open: field inode: struct open_event has no member inode/);
  });
});

describe('integers as the byte encoder writes them', () => {
  const edges: [string, Record<string, MemberValue>][] = [
    ['zero and one digit', { pid: 0, tid: 9, uid: 10, ret: 0, mntns_id: 0n, cgroup_id: 1n }],
    ['int32 edges', { pid: 2147483647, tid: 2147483648, uid: 4294967295, ret: -2147483648, mntns_id: 999999999n, cgroup_id: 1000000000n }],
    ['above int32', { pid: 100, tid: 100, uid: 0, ret: -1, mntns_id: 4026531840n, cgroup_id: 9007199254740991n }],
    ['u64 past 2^53 loses only what a JS number loses', { pid: 1, tid: 1, uid: 1, ret: 1, mntns_id: 2n ** 60n, cgroup_id: 123456789012345678n }],
  ];
  for (const [name, values] of edges) {
    test(name, () => {
      const f = fixture(openDef, openLayout, { ...openEvent, ...values });
      const line = f.codec.encode(AT, f.length)!;
      const parsed = JSON.parse(line);
      assert.deepEqual(f.codec.decode(AT, f.length), parsed, 'bytes written agree with the decoded values');
      for (const [k, v] of Object.entries(values)) assert.equal(parsed[k], Number(v), k);
      assert.match(line, /^\{"timestamp":"[^"]+","pid":\d+,/);
    });
  }
});

describe('maxLineBytes', () => {
  // issue 5: a field the filter read was budgeted 24 bytes but written in full,
  // so 255 escaped control characters overran the sink's reservation
  test('a path of 255 control characters fits, with a filter reading path', () => {
    const path = Buffer.concat([Buffer.from('/tmp/'), Buffer.alloc(250, 0x01)]);
    for (const filter of ['', 'path~^/tmp/']) {
      const f = fixture(openDef, openLayout, { ...openEvent, path, comm: Buffer.alloc(16, 0x1f) }, { filter });
      const line = writeLine(f);
      assert.ok(Buffer.byteLength(line) <= f.codec.maxLineBytes, `${Buffer.byteLength(line)} bytes > maxLineBytes ${f.codec.maxLineBytes} under "${filter}"`);
      assert.equal(JSON.parse(line).path, path.toString('latin1'));
    }
  });
});
