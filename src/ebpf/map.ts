/**
 * BPF maps read from user space: lookup, iterate, and read-and-clear in one
 * pass (the interval mode's tick). Entries land in buffers allocated once
 * per map, so a tick allocates nothing per entry.
 *
 * Read-and-clear uses BPF_MAP_LOOKUP_AND_DELETE_BATCH (Linux 5.6+ for hash
 * maps) and falls back, the first time the kernel refuses it, to iterate
 * (get_next_key) then lookup+delete each key. The fallback loses updates made
 * between a key's lookup and its delete; the batch takes each bucket under
 * its lock, so it loses none.
 *
 * Per-CPU maps hold one value per possible CPU, each slot rounded up to 8
 * bytes: `valueStride` is what one entry takes in `values`, and cpuOffset()
 * where a CPU's slot starts.
 */
import { KernelError, hintFor } from './errors.ts';
import { native } from './libbpf.ts';

export const MapType = { HASH: 1, ARRAY: 2, PERCPU_HASH: 5, PERCPU_ARRAY: 6, LRU_HASH: 9, LRU_PERCPU_HASH: 10 } as const;
const PER_CPU: ReadonlySet<number> = new Set([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH]);

const ENOENT = 2;
const EINVAL = 22;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524;

export interface MapInfo {
  name: string;
  fd: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** Entries read by one drain: entry i's key at i*keySize of `keys`, its value at i*valueStride of `values`. */
export interface MapEntries {
  count: number;
  keys: Buffer;
  values: Buffer;
}

export class KernelMap {
  readonly perCpu: boolean;
  /** possible CPUs (per-CPU maps hold a slot for each) */
  readonly cpus: number;
  /** bytes one entry's value takes in `values` */
  readonly valueStride: number;
  private readonly keys: Buffer;
  private readonly values: Buffer;
  /** undefined until the first drain tried the batch call */
  private batch: boolean | undefined;

  /** `owned`: the fd is this map's to close (a map it created), not its object's */
  constructor(readonly info: MapInfo, private readonly owned = false) {
    this.perCpu = PER_CPU.has(info.type);
    this.cpus = this.perCpu ? native().libbpf_num_possible_cpus() : 1;
    if (this.cpus < 1) throw new KernelError('count possible CPUs', -this.cpus);
    this.valueStride = this.perCpu ? roundUp8(info.valueSize) * this.cpus : info.valueSize;
    this.keys = Buffer.alloc(info.keySize * info.maxEntries);
    this.values = Buffer.alloc(this.valueStride * info.maxEntries);
  }

  /** A map of its own, not in any object (tests, user-space scratch maps); close() frees it. */
  static create(type: number, keySize: number, valueSize: number, maxEntries: number, name = 'gadget_map'): KernelMap {
    const fd = native().bpf_map_create(type, name, keySize, valueSize, maxEntries, null);
    if (fd < 0) throw new KernelError(`create map ${name}`, -fd, hintFor(-fd));
    return new KernelMap({ name, fd, type, keySize, valueSize, maxEntries }, true);
  }

  /** the byte offset of `cpu`'s slot inside one per-CPU value */
  cpuOffset(cpu: number): number {
    return cpu * roundUp8(this.info.valueSize);
  }

  /** Write one entry (for per-CPU maps `value` holds every CPU's slot, valueStride bytes). */
  update(key: Uint8Array, value: Uint8Array): void {
    const rc = native().bpf_map_update_elem(this.info.fd, key, value, 0);
    if (rc < 0) throw new KernelError(`update map ${this.info.name}`, -rc, hintFor(-rc));
  }

  /** One entry's value (valueStride bytes), or undefined when the key is absent. */
  lookup(key: Uint8Array): Buffer | undefined {
    const value = Buffer.alloc(this.valueStride);
    const rc = native().bpf_map_lookup_elem(this.info.fd, key, value);
    if (rc === -ENOENT) return undefined;
    if (rc < 0) throw new KernelError(`lookup in map ${this.info.name}`, -rc, hintFor(-rc));
    return value;
  }

  /** false when the key was not there */
  delete(key: Uint8Array): boolean {
    const rc = native().bpf_map_delete_elem(this.info.fd, key);
    if (rc === -ENOENT) return false;
    if (rc < 0) throw new KernelError(`delete from map ${this.info.name}`, -rc, hintFor(-rc));
    return true;
  }

  /** Every entry (copies); entries added or removed meanwhile may or may not be seen. */
  entries(): [Buffer, Buffer][] {
    const out: [Buffer, Buffer][] = [];
    for (const key of this.keyList()) {
      const value = this.lookup(key);
      if (value) out.push([key, value]);
    }
    return out;
  }

  /** Every key now in the map (a hash map changing meanwhile may show a key twice or miss one). */
  keyList(): Buffer[] {
    const out: Buffer[] = [];
    const n = native();
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.info.keySize);
      const rc = n.bpf_map_get_next_key(this.info.fd, prev, next);
      if (rc === -ENOENT) return out;
      if (rc < 0) throw new KernelError(`iterate map ${this.info.name}`, -rc, hintFor(-rc));
      out.push(next);
      prev = next;
      if (out.length > this.info.maxEntries) return out; // keys churning under us: stop at a map's worth
    }
  }

  /**
   * Read and delete every entry, batched where the kernel can; the returned
   * buffers are reused by the next drain.
   */
  drain(): MapEntries {
    if (this.batch !== false) {
      const got = this.drainBatch();
      if (got) return got;
    }
    return this.drainIterate();
  }

  /** undefined: this kernel has no batch op for this map type (remembered) */
  private drainBatch(): MapEntries | undefined {
    const n = native();
    const { fd, keySize, maxEntries } = this.info;
    // the batch token: a bucket index for hash maps; a key's size is always enough
    let inBatch: Buffer | null = null;
    let outBatch = Buffer.alloc(Math.max(keySize, 8));
    let spare = Buffer.alloc(outBatch.length);
    let total = 0;
    while (total < maxEntries) {
      const count = [maxEntries - total];
      const rc = n.bpf_map_lookup_and_delete_batch(
        fd, inBatch, outBatch, this.keys.subarray(total * keySize), this.values.subarray(total * this.valueStride), count, null,
      );
      if (rc < 0 && this.batch === undefined && total === 0 && [EINVAL, EOPNOTSUPP, ENOTSUPP].includes(-rc)) {
        this.batch = false;
        return undefined;
      }
      this.batch = true;
      total += count[0];
      if (rc === -ENOENT) break;
      if (rc < 0) throw new KernelError(`read and clear map ${this.info.name}`, -rc, hintFor(-rc) ?? 'the batch lookup-and-delete failed');
      [inBatch, outBatch, spare] = [outBatch, spare, outBatch];
    }
    return { count: total, keys: this.keys, values: this.values };
  }

  private drainIterate(): MapEntries {
    const n = native();
    const { fd, keySize } = this.info;
    let count = 0;
    for (const key of this.keyList()) {
      if (count === this.info.maxEntries) break;
      const value = this.values.subarray(count * this.valueStride, (count + 1) * this.valueStride);
      const rc = n.bpf_map_lookup_elem(fd, key, value);
      if (rc === -ENOENT) continue; // deleted since we listed it
      if (rc < 0) throw new KernelError(`lookup in map ${this.info.name}`, -rc, hintFor(-rc));
      n.bpf_map_delete_elem(fd, key);
      key.copy(this.keys, count * keySize);
      count++;
    }
    return { count, keys: this.keys, values: this.values };
  }

  /** whether drains use the batch call (undefined before the first drain) */
  get batched(): boolean | undefined {
    return this.batch;
  }

  /** Force the iterate+delete path (tests of the fallback). */
  disableBatch(): void {
    this.batch = false;
  }

  close(): void {
    if (this.owned) native().close(this.info.fd);
  }
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}
