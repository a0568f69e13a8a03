import fs from 'node:fs';

const FLUSH_BYTES = 1 << 20;

/** Buffered NDJSON writer: lines are joined and written once per batch. */
export class LineSink {
  private readonly fd: number;
  private pending: string[] = [];
  private pendingBytes = 0;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'w');
  }

  push(line: string): void {
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (!this.pending.length) return;
    fs.writeSync(this.fd, this.pending.join('\n') + '\n');
    this.pending = [];
    this.pendingBytes = 0;
  }

  close(): void {
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }
}
