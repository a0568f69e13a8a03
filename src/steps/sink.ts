import fs from 'node:fs';

const CHUNK_BYTES = 1 << 20;
/** UTF-8 needs at most 3 bytes per UTF-16 unit */
const MAX_BYTES_PER_CHAR = 3;

/**
 * Buffered NDJSON writer: each line is encoded straight into a 1 MiB buffer
 * (no joined string, no second encoding pass) that is written once full and
 * once per drain batch.
 */
export class LineSink {
  private readonly fd: number;
  private readonly chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'w');
  }

  push(line: string): void {
    if (this.used + line.length * MAX_BYTES_PER_CHAR + 1 > CHUNK_BYTES) {
      this.flush();
      if (line.length * MAX_BYTES_PER_CHAR + 1 > CHUNK_BYTES) {
        fs.writeSync(this.fd, line + '\n');
        return;
      }
    }
    this.used += this.chunk.write(line, this.used);
    this.chunk[this.used++] = 0x0a;
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
