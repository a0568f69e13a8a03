/**
 * traceloop rows as strace prints them, one line a syscall:
 *   16:35:01.123456 4242 crash: openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3
 * (the thread id follows the pid as 4242/4243 when they differ). The
 * arguments are rendered from the row's args by the syscall's argument kinds
 * (./syscalls.ts): the output can be made from the NDJSON alone.
 */
import { SIGNALS } from '../../steps/names/index.ts';
import { openFlagNames } from '../trace/open.ts';
import { argKinds, RETURNS_ADDRESS, type ArgKind } from './syscalls.ts';

const AT_FDCWD = -100;
const O_CREAT = 0o100;
const O_TMPFILE = 0o20000000;

/** The arguments strace shows: open and openat take a mode only with O_CREAT or O_TMPFILE. */
function shownArgs(name: string, args: unknown[], kinds: readonly ArgKind[] | undefined): unknown[] {
  const at = kinds?.indexOf('oflags') ?? -1;
  if ((name === 'open' || name === 'openat') && at >= 0 && typeof args[at] === 'number' && ((args[at] as number) & (O_CREAT | O_TMPFILE)) === 0) return args.slice(0, at + 1);
  return args;
}

function renderArg(v: unknown, kind: ArgKind | undefined): string {
  if (typeof v === 'string') return kind === 'path' && v !== 'NULL' && !v.startsWith('0x') ? JSON.stringify(v) : v;
  if (typeof v !== 'number') return String(v);
  switch (kind) {
    case 'fd': return v === AT_FDCWD ? 'AT_FDCWD' : String(v);
    case 'oflags': return openFlagNames(v);
    case 'mode': return `0${v.toString(8)}`;
    case 'sig': return SIGNALS[v] ?? String(v);
    default: return String(v);
  }
}

function renderRet(row: Record<string, unknown>): string {
  const ret = row.ret;
  if (ret === null || ret === undefined) return '? <unfinished>';
  const n = ret as number;
  if (row.err_name) return `-1 ${row.err_name}`;
  return RETURNS_ADDRESS.has(row.syscall as string) ? `0x${n.toString(16)}` : String(n);
}

/** One row as a strace line. */
export function straceLine(row: Record<string, unknown>): string {
  const name = String(row.syscall);
  const kinds = argKinds(name);
  const args = shownArgs(name, (row.args as unknown[] | undefined) ?? [], kinds);
  const call = `${name}(${args.map((a, i) => renderArg(a, kinds?.[i])).join(', ')})`;
  const ts = typeof row.timestamp === 'string' ? row.timestamp.slice(11, 26) : '';
  const who = row.pid === row.tid ? `${row.pid}` : `${row.pid}/${row.tid}`;
  return `${ts} ${who} ${row.comm}: ${call} = ${renderRet(row)}`;
}

/** The rows (traceloop's NDJSON records) as strace text. */
export function straceText(rows: unknown[]): string {
  let out = '';
  for (const r of rows) if (r !== null && typeof r === 'object' && 'syscall' in r) out += straceLine(r as Record<string, unknown>) + '\n';
  return out;
}
