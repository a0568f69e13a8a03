/**
 * Zero-copy reader of a BPF ring buffer map (docs/architecture.md, "Ring buffer at C speed from JS").
 * The consumer page is mapped read-write, the producer page and the data
 * (mapped twice by the kernel, so wrapped records are contiguous) read-only.
 * Records are parsed in place and the consumer position advances once per
 * batch. No libbpf callback per event. Waiting for the kernel's wakeups is
 * the shared poller's job (poller.ts): register `fd` there.
 */
import { KernelError } from './errors.ts';
import { native, errno, view, type Pointer } from './libbpf.ts';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const HEADER = 8;

/** Called once per record: the record's data is buf[offset, offset + length). */
export type RecordHandler = (offset: number, length: number) => void;

export class RingReader {
  /** The data area (twice the ring size); record offsets index into it. */
  readonly buf: Buffer;
  readonly dv: DataView;
  private readonly consumerPos: BigUint64Array;
  private readonly producerPos: BigUint64Array;
  private readonly headers: Int32Array;
  private readonly mask: number;
  private readonly pageSize: number;
  private consumerPtr: Pointer;
  private producerPtr: Pointer;
  /** the ring buffer map's fd, what the kernel's wakeups signal */
  readonly fd: number;

  constructor(mapFd: number, private readonly size: number) {
    this.fd = mapFd;
    const n = native();
    this.pageSize = n.getpagesize();
    this.mask = size - 1;
    this.consumerPtr = n.mmap(null, this.pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0);
    if (this.consumerPtr === MAP_FAILED) throw new KernelError('mmap ring buffer consumer page', errno());
    this.producerPtr = n.mmap(null, this.pageSize + 2 * size, PROT_READ, MAP_SHARED, mapFd, this.pageSize);
    if (this.producerPtr === MAP_FAILED) {
      const e = errno();
      n.munmap(this.consumerPtr, this.pageSize);
      throw new KernelError('mmap ring buffer data', e);
    }
    this.consumerPos = new BigUint64Array(view(this.consumerPtr, this.pageSize), 0, 1);
    const producer = view(this.producerPtr, this.pageSize + 2 * size);
    this.producerPos = new BigUint64Array(producer, 0, 1);
    this.buf = Buffer.from(producer, this.pageSize, 2 * size);
    this.dv = new DataView(producer, this.pageSize, 2 * size);
    this.headers = new Int32Array(producer, this.pageSize, (2 * size) / 4);
  }

  /**
   * Hand every committed record to `onRecord`, skipping discarded ones, and
   * release them to the producer in one consumer-position update.
   * Returns the number of records seen.
   */
  drain(onRecord: RecordHandler): number {
    let count = 0;
    let cons = Number(Atomics.load(this.consumerPos, 0));
    // at most one ring's worth per call, so a producer faster than us cannot hold the event loop
    const budgetEnd = cons + this.size;
    while (cons < budgetEnd) {
      const prod = Number(Atomics.load(this.producerPos, 0));
      if (cons >= prod) break;
      const start = cons;
      while (cons < prod) {
        const off = cons & this.mask;
        const hdr = Atomics.load(this.headers, off >>> 2) >>> 0;
        if (hdr & BUSY_BIT) break;
        const len = hdr & ~(BUSY_BIT | DISCARD_BIT);
        if (!(hdr & DISCARD_BIT)) {
          onRecord(off + HEADER, len);
          count++;
        }
        cons += (len + HEADER + 7) & ~7;
      }
      Atomics.store(this.consumerPos, 0, BigInt(cons));
      if (cons === start) break; // the next record is still being written
    }
    return count;
  }

  /** Bytes the producer has committed or reserved that the consumer has not released. */
  unread(): number {
    return Number(Atomics.load(this.producerPos, 0)) - Number(Atomics.load(this.consumerPos, 0));
  }

  close(): void {
    const n = native();
    if (this.producerPtr !== null) n.munmap(this.producerPtr, this.pageSize + 2 * this.size);
    if (this.consumerPtr !== null) n.munmap(this.consumerPtr, this.pageSize);
    this.producerPtr = this.consumerPtr = null;
  }
}
