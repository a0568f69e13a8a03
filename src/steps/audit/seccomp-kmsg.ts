/**
 * audit/seccomp's first source (the gadget itself is not registered yet):
 * the kernel's own seccomp audit records (AUDIT_SECCOMP, type=1326) as they
 * reach the kernel log, /dev/kmsg. Measured on this kernel (6.18,
 * test/fixtures/seccomp_actions.c): LOG and KILL_PROCESS actions always
 * write a record; ERRNO (and TRAP) only when the filter was installed with
 * SECCOMP_FILTER_FLAG_LOG; the record's code is the action without its data
 * (ERRNO(EACCES) logs code=0x50000, not 0x5000d).
 */
import fs from 'node:fs';
import { SYSCALLS_X86_64 } from '../names/syscalls-x86_64.ts';

/** SECCOMP_RET_* (include/uapi/linux/seccomp.h), by the action bits of a return value */
export const SECCOMP_ACTIONS: Readonly<Record<number, string>> = {
  0x80000000: 'kill_process',
  0x00000000: 'kill_thread',
  0x00030000: 'trap',
  0x00050000: 'errno',
  0x7fc00000: 'user_notif',
  0x7ff00000: 'trace',
  0x7ffc0000: 'log',
  0x7fff0000: 'allow',
};

/** AUDIT_ARCH_X86_64: the arch= of a 64-bit syscall's record */
const AUDIT_ARCH_X86_64 = 'c000003e';

export interface SeccompAuditRecord {
  pid: number;
  uid: number;
  comm: string;
  exe: string;
  /** the syscall's name for x86-64 records; the number as text for other ABIs (arch=40000003: i386) */
  syscall: string;
  syscall_nr: number;
  arch: string;
  action: string;
  /** the signal the action sends (31 SIGSYS for a kill), 0 for none */
  sig: number;
}

/** The action of a seccomp return value (SECCOMP_RET_ACTION_FULL bits). */
export function seccompAction(code: number): string {
  const full = (code & 0xffff0000) >>> 0;
  return SECCOMP_ACTIONS[full] ?? `0x${full.toString(16)}`;
}

/** One kmsg line (`PRI,SEQ,TS,FLAGS;audit: type=1326 … key=value …`), or undefined when it is not a seccomp audit record. */
export function parseSeccompRecord(line: string): SeccompAuditRecord | undefined {
  const text = line.slice(line.indexOf(';') + 1);
  if (!/^audit: type=1326 /.test(text)) return undefined;
  const kv = new Map<string, string>();
  // values are bare or double-quoted (comm, exe); an unprintable comm is hex, unquoted
  for (const m of text.matchAll(/(\w+)=("[^"]*"|\S+)/g)) kv.set(m[1], m[2].startsWith('"') ? m[2].slice(1, -1) : m[2]);
  const nr = Number(kv.get('syscall'));
  const arch = kv.get('arch') ?? '';
  return {
    pid: Number(kv.get('pid')),
    uid: Number(kv.get('uid')),
    comm: kv.get('comm') ?? '',
    exe: kv.get('exe') ?? '',
    syscall: (arch === AUDIT_ARCH_X86_64 && SYSCALLS_X86_64[nr]) || String(nr),
    syscall_nr: nr,
    arch,
    action: seccompAction(Number(kv.get('code'))),
    sig: Number(kv.get('sig') ?? 0),
  };
}

/** Every seccomp audit record still in the kernel log (oldest first); /dev/kmsg hands one record per read. */
export function readSeccompRecords(): SeccompAuditRecord[] {
  const fd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const buf = Buffer.alloc(8192);
  const out: SeccompAuditRecord[] = [];
  try {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break; // the end of the log
        if (code === 'EPIPE') continue; // records overwritten while we read: go on from the oldest left
        throw new Error(`read /dev/kmsg: ${code} — run as root (CAP_SYSLOG) or set kernel.dmesg_restrict=0`, { cause: err });
      }
      const r = parseSeccompRecord(buf.toString('utf8', 0, n));
      if (r) out.push(r);
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}
