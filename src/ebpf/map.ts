/**
 * Reading a whole BPF hash map from user space: every (key, value) pair,
 * walked with BPF_MAP_GET_NEXT_KEY. Profile mode reads its maps once, at the
 * end of the step, so a plain walk is enough here.
 */
import { KernelError } from './errors.ts';
import { errno, native } from './libbpf.ts';
import type { MapInfo } from './object.ts';

const ENOENT = 2;

/** Every entry of the map, as copies (keys and values are fresh Buffers). */
export function* mapEntries(map: MapInfo): Generator<[key: Buffer, value: Buffer]> {
  const n = native();
  let key: Buffer | null = null;
  for (;;) {
    const next = Buffer.alloc(map.keySize);
    if (n.bpf_map_get_next_key(map.fd, key, next) < 0) {
      const e = errno();
      if (e === ENOENT) return;
      throw new KernelError(`walk map ${map.name} (BPF_MAP_GET_NEXT_KEY)`, e);
    }
    const value = Buffer.alloc(map.valueSize);
    // a key deleted between the two calls is skipped, not an error
    if (n.bpf_map_lookup_elem(map.fd, next, value) === 0) yield [next, value];
    else if (errno() !== ENOENT) throw new KernelError(`read map ${map.name}`, errno());
    key = next;
  }
}

/** The value under one key, or undefined when the key is absent. */
export function lookup(map: MapInfo, key: Buffer): Buffer | undefined {
  const value = Buffer.alloc(map.valueSize);
  if (native().bpf_map_lookup_elem(map.fd, key, value) === 0) return value;
  const e = errno();
  if (e === ENOENT) return undefined;
  throw new KernelError(`read map ${map.name}`, e);
}
