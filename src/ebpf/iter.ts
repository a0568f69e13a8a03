import { KernelError } from './errors.ts';
import { native, errno } from './libbpf.ts';

const CHUNK = 64 * 1024;

/** Read an iterator fd to its end (one full pass) and close it. */
export function readIterator(fd: number): Buffer {
  const n = native();
  const chunks: Buffer[] = [];
  try {
    for (;;) {
      const chunk = Buffer.alloc(CHUNK);
      const got = Number(n.read(fd, chunk, CHUNK));
      if (got < 0) {
        const e = errno();
        if (e === 4 /* EINTR */ || e === 11 /* EAGAIN */) continue;
        throw new KernelError('read BPF iterator', e);
      }
      if (got === 0) break;
      chunks.push(chunk.subarray(0, got));
    }
  } finally {
    n.close(fd);
  }
  return Buffer.concat(chunks);
}
