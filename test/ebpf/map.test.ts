/** Map primitives on real kernel maps (created from user space): batch and iterate drains, per-CPU values. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KernelMap, MapType } from '../../src/ebpf/map.ts';
import { kernelSkip } from '../helpers/kernel.ts';

function key(i: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(i, 0);
  b.writeUInt32LE(~i >>> 0, 4);
  return b;
}

function fill(map: KernelMap, n: number, value: (i: number) => Buffer): void {
  for (let i = 0; i < n; i++) map.update(key(i), value(i));
}

function entries(map: KernelMap): Map<number, Buffer> {
  const { count, keys, values } = map.drain();
  const out = new Map<number, Buffer>();
  for (let i = 0; i < count; i++) {
    out.set(keys.readUInt32LE(i * 8), Buffer.from(values.subarray(i * map.valueStride, (i + 1) * map.valueStride)));
  }
  return out;
}

describe('kernel maps', { skip: kernelSkip() }, () => {
for (const path of ['batch', 'iterate'] as const) {
  test(`a ${path} drain reads every entry once and leaves the map empty`, (t) => {
    // more entries than one hash bucket and than one batch call's natural chunk
    const map = KernelMap.create(MapType.HASH, 8, 16, 5000);
    t.after(() => map.close());
    if (path === 'iterate') map.disableBatch();
    const n = 3000;
    fill(map, n, (i) => {
      const v = Buffer.alloc(16);
      v.writeBigUInt64LE(BigInt(i) * 3n, 0);
      v.writeBigUInt64LE(BigInt(i) + 7n, 8);
      return v;
    });
    const got = entries(map);
    assert.equal(map.batched, path === 'batch', 'this kernel has BPF_MAP_LOOKUP_AND_DELETE_BATCH for hash maps');
    assert.equal(got.size, n);
    for (let i = 0; i < n; i++) {
      assert.equal(got.get(i)!.readBigUInt64LE(0), BigInt(i) * 3n, `entry ${i}`);
      assert.equal(got.get(i)!.readBigUInt64LE(8), BigInt(i) + 7n, `entry ${i}`);
    }
    assert.deepEqual(map.keyList(), []);
    assert.equal(map.drain().count, 0, 'a drain of an empty map reads nothing');
    fill(map, 2, () => Buffer.alloc(16, 1));
    assert.equal(entries(map).size, 2, 'the buffers are reused: a second drain sees only the new entries');
  });
}

test('per-CPU values: one 8-byte aligned slot per possible CPU, each CPU readable', (t) => {
  // a 12-byte value pads to 16 per CPU
  const map = KernelMap.create(MapType.PERCPU_HASH, 8, 12, 16);
  t.after(() => map.close());
  assert.ok(map.perCpu);
  assert.equal(map.valueStride, 16 * map.cpus);
  const value = Buffer.alloc(map.valueStride);
  for (let cpu = 0; cpu < map.cpus; cpu++) value.writeUInt32LE(100 + cpu, map.cpuOffset(cpu) + 8);
  map.update(key(1), value);
  const got = entries(map).get(1)!;
  for (let cpu = 0; cpu < map.cpus; cpu++) assert.equal(got.readUInt32LE(map.cpuOffset(cpu) + 8), 100 + cpu, `cpu ${cpu}`);
  assert.equal(map.lookup(key(1)), undefined, 'drained');
});
});
