/**
 * libbpf's log (warnings, verifier output) captured through libbpf_set_print,
 * so a failed load can keep the whole log in a file and show its tail.
 */
import { koffi, native } from './libbpf.ts';

const LIBBPF_WARN = 0;
const LIBBPF_DEBUG = 2;

let lines: string[] = [];
let installed = false;
const scratch = Buffer.alloc(64 * 1024);

/** Start capturing libbpf's messages (idempotent). */
export function captureLibbpfLog(): void {
  if (installed) return;
  const n = native();
  const cb = koffi().register((level: number, fmt: unknown, ap: unknown) => {
    if (level === LIBBPF_DEBUG) return 0;
    const len = n.vsnprintf(scratch, scratch.length, fmt, ap);
    if (len > 0) lines.push(scratch.toString('utf8', 0, Math.min(len, scratch.length - 1)));
    if (level === LIBBPF_WARN && process.env.GADGET_RUN_DEBUG) process.stderr.write(lines.at(-1)!);
    return 0;
  }, koffi().pointer(n.printFn));
  n.libbpf_set_print(cb);
  installed = true;
}

/** Take (and clear) what libbpf said since the last call. */
export function takeLibbpfLog(): string {
  const text = lines.join('');
  lines = [];
  return text;
}
