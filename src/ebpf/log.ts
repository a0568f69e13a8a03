/**
 * libbpf's log (warnings, verifier output) captured through libbpf_set_print,
 * so a failed load can keep the whole log in a file and show its tail.
 */
import type { LoadFailure } from './errors.ts';
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

/** lines of libbpf's log that say nothing about why (the object's name, bookkeeping) */
const NOISE = [/^failed to load object /, /^prog '[^']*': failed to load: -?\d+$/, /^prog '[^']*': BPF program load failed: /];
/** the verifier's closing statistics, after its complaint */
const VERIFIER_STATS = /^(processed \d+ insns|verification time|stack depth|max_states_per_insn)/;
const MAX_DETAIL_CHARS = 300;

/**
 * Why a load failed, in libbpf's words: the verifier's last complaint before
 * its statistics (with the program's name), else libbpf's own warnings (a
 * missing kfunc, a BTF type the kernel lacks). libbpf 1.1 reports these only
 * as log text, so this is where its text is read; nothing else parses it.
 */
export function loadFailureOf(log: string, tailLines = 8): Omit<LoadFailure, 'logFile'> {
  const lines = log.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const tail = lines.slice(-tailLines);
  const clip = (l: string) => (l.length > MAX_DETAIL_CHARS ? `${l.slice(0, MAX_DETAIL_CHARS)}…` : l);
  const begin = lines.findIndex((l) => /^libbpf: prog '[^']*': -- BEGIN PROG LOAD LOG --$/.test(l));
  if (begin >= 0) {
    const program = /^libbpf: prog '([^']*)'/.exec(lines[begin])![1];
    const end = lines.findIndex((l, i) => i > begin && l === '-- END PROG LOAD LOG --');
    const body = lines.slice(begin + 1, end < 0 ? undefined : end).filter((l) => !VERIFIER_STATS.test(l));
    const complaint = body.at(-1);
    return { program, verifier: true, detail: complaint ? [clip(`program ${program}: ${complaint}`)] : [], tail };
  }
  const said = lines.filter((l) => l.startsWith('libbpf: ')).map((l) => l.slice('libbpf: '.length));
  const program = said.map((l) => /^prog '([^']*)'/.exec(l)?.[1]).find(Boolean);
  const telling = said.filter((l) => !NOISE.some((re) => re.test(l)));
  // nothing but "prog 'x': failed to load: -22" is still better than no words at all
  const detail = (telling.length ? telling : said.filter((l) => !/^failed to load object /.test(l))).slice(-3).map(clip);
  return { ...(program ? { program } : {}), verifier: false, detail, tail };
}
