/**
 * Node's system errors in a person's words, from their fields, not their
 * message: Node's message repeats the call and the path ("ENOSPC: no space
 * left on device, write '/x/y'"), which the caller names better itself.
 */
import util from 'node:util';

/** libuv's description of an errno, keyed by Node's negative errno */
const messages = util.getSystemErrorMap();

/** "no space left on device (ENOSPC)"; a non-system error: its message. */
export function describeSystemError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.errno !== 'number') return (err as Error)?.message ?? String(err);
  const text = messages.get(e.errno)?.[1] ?? messages.get(-Math.abs(e.errno))?.[1];
  return text ? `${text} (${e.code})` : e.code;
}
