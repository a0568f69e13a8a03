import fs from 'node:fs';
import type { ByteWriter } from './codec.ts';

const CHUNK_BYTES = 1 << 20;

/**
 * Buffered NDJSON file: codecs write lines as bytes straight into `chunk`
 * (see ByteWriter), which goes to the file when it is full and once per drain.
 */
export class LineSink implements ByteWriter {
  chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  used = 0;
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'w');
  }

  /** make room for `bytes` more */
  reserve(bytes: number): void {
    if (this.used + bytes <= this.chunk.length) return;
    this.flush();
    if (bytes > this.chunk.length) this.chunk = Buffer.allocUnsafe(bytes);
  }

  flush(): void {
    let off = 0;
    while (off < this.used) off += fs.writeSync(this.fd, this.chunk, off, this.used - off);
    this.used = 0;
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }
}
