/**
 * The kernel's own seccomp audit records (AUDIT_SECCOMP, type=1326): their
 * parser (for the text both feeds carry, ./source.ts), and the
 * kernel log feed — /dev/kmsg and its signs that records were lost. Measured on this kernel (6.18,
 * test/fixtures/seccomp_actions.c): LOG and KILL_PROCESS actions always
 * write a record; ERRNO (and TRAP) only when the filter was installed with
 * SECCOMP_FILTER_FLAG_LOG; the record's code is the action without its data
 * (ERRNO(EACCES) logs code=0x50000, not 0x5000d).
 */
import fs from 'node:fs';
import { native } from '../../../ebpf/libbpf.ts';
import { SYSCALLS_X86_64 } from '../../../steps/names/syscalls-x86_64.ts';

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
  /** the record's audit(SECONDS.MS:SERIAL) stamp: wall-clock ms when the kernel made it */
  wallMs: number;
  pid: number;
  uid: number;
  gid: number;
  comm: string;
  exe: string;
  /** the syscall's name for x86-64 records; the number as text for other ABIs (arch=40000003: i386) */
  syscall: string;
  syscall_nr: number;
  arch: string;
  action: string;
  /** the signal the action sends (31 SIGSYS for a kill), 0 for none */
  sig: number;
  /** the record's code= (the filter's return value, action bits only) */
  code: number;
}

/** The action of a seccomp return value (SECCOMP_RET_ACTION_FULL bits). */
export function seccompAction(code: number): string {
  const full = (code & 0xffff0000) >>> 0;
  return SECCOMP_ACTIONS[full] ?? `0x${full.toString(16)}`;
}

/** One kmsg line (`PRI,SEQ,TS,FLAGS;audit: type=1326 … key=value …`), or undefined when it is not a seccomp audit record. */
export function parseSeccompRecord(line: string): SeccompAuditRecord | undefined {
  const text = line.slice(line.indexOf(';') + 1);
  return /^audit: type=1326 /.test(text) ? parseSeccompText(text) : undefined;
}

/** The text of a seccomp audit record (`audit(SECONDS.MS:SERIAL): auid=… code=…`), as kmsg and the audit netlink socket carry it. */
export function parseSeccompText(text: string): SeccompAuditRecord {
  const kv = new Map<string, string>();
  // values are bare or double-quoted (comm, exe); a comm or exe with a space, a quote or an
  // unprintable byte is its bytes in hex, unquoted (audit_log_untrustedstring)
  for (const m of text.matchAll(/(\w+)=("[^"]*"|\S+)/g)) {
    const quoted = m[2].startsWith('"');
    const untrusted = !quoted && (m[1] === 'comm' || m[1] === 'exe') && /^([0-9A-F]{2})+$/.test(m[2]);
    kv.set(m[1], quoted ? m[2].slice(1, -1) : untrusted ? Buffer.from(m[2], 'hex').toString('utf8') : m[2]);
  }
  const nr = Number(kv.get('syscall'));
  const arch = kv.get('arch') ?? '';
  const stamp = /audit\((\d+)\.(\d{3}):\d+\)/.exec(text);
  return {
    wallMs: stamp ? Number(stamp[1]) * 1000 + Number(stamp[2]) : 0,
    pid: Number(kv.get('pid')),
    uid: Number(kv.get('uid')),
    gid: Number(kv.get('gid')),
    comm: kv.get('comm') ?? '',
    exe: kv.get('exe') ?? '',
    syscall: (arch === AUDIT_ARCH_X86_64 && SYSCALLS_X86_64[nr]) || String(nr),
    syscall_nr: nr,
    arch,
    action: seccompAction(Number(kv.get('code'))),
    sig: Number(kv.get('sig') ?? 0),
    code: Number(kv.get('code')),
  };
}

/** Every seccomp audit record still in the kernel log (oldest first). */
export function readSeccompRecords(): SeccompAuditRecord[] {
  const kmsg = new KmsgReader('start');
  const out: SeccompAuditRecord[] = [];
  try {
    kmsg.read((line) => {
      const r = parseSeccompRecord(line);
      if (r) out.push(r);
    });
  } finally {
    kmsg.close();
  }
  return out;
}

const SYS_LSEEK = 8;
const SEEK_END = 2;

/**
 * Reads /dev/kmsg without blocking, one record per read(2) (that is how the
 * device hands them out), from the oldest record still there or from the
 * end at open. Counts the records it missed: /dev/kmsg fails a read with
 * EPIPE when the ring overwrote the next record, and the sequence numbers of
 * the records read (PRI,SEQ,...) show how many went.
 */
export class KmsgReader {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(8192);
  private readonly gaps = new SeqGaps();

  /** records overwritten before they were read */
  get overwritten(): number {
    return this.gaps.missed;
  }

  constructor(from: 'start' | 'end') {
    try {
      this.fd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw new Error(`open /dev/kmsg: ${(err as NodeJS.ErrnoException).code} — run as root (CAP_SYSLOG) or set kernel.dmesg_restrict=0`, { cause: err });
    }
    // SEEK_END: from the next record the kernel writes (node's fs has no lseek)
    if (from === 'end' && Number(native().syscall(SYS_LSEEK, 'int', this.fd, 'long', 0, 'int', SEEK_END)) < 0) {
      fs.closeSync(this.fd);
      throw new Error('lseek /dev/kmsg SEEK_END failed: the kernel log cannot be read from its end');
    }
  }

  /** hand every record written since the last read to `onLine` (its text without the trailing newline) */
  read(onLine: (line: string) => void): void {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') return; // the end of the log
        if (code === 'EPIPE') {
          // the next record was overwritten; the read after this one returns the oldest left, and its
          // sequence number says how many went (at least one, if we had none to compare with)
          this.gaps.overrun();
          continue;
        }
        throw new Error(`read /dev/kmsg: ${code} — run as root (CAP_SYSLOG) or set kernel.dmesg_restrict=0`, { cause: err });
      }
      const line = this.buf.toString('utf8', 0, n).replace(/\n$/, '');
      this.gaps.see(Number(line.split(',', 2)[1]));
      onLine(line);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Records missed between the sequence numbers of the records read (PRI,SEQ,TS,FLAGS;...). */
export class SeqGaps {
  missed = 0;
  private next?: number;

  see(seq: number): void {
    if (!Number.isSafeInteger(seq)) return;
    if (this.next !== undefined && seq > this.next) this.missed += seq - this.next;
    this.next = seq + 1;
  }

  /** an EPIPE: the next record went; the gap to the record read next says how many, unless there was no record before to count from */
  overrun(): void {
    if (this.next === undefined) this.missed++;
  }
}

/**
 * The kernel log's signs that audit records were dropped before they reached
 * it. Without auditd, kauditd prints each record through printk_ratelimit()
 * (10 per 5 s by default, a window the node's other ratelimited messages
 * share) and says later "kauditd_printk_skb: N callbacks suppressed". The
 * audit queue drops records past its rate or backlog limit, and says so at
 * most once a second: "audit: audit_lost=N ..." (a running total, which also
 * counts records dropped after they were printed: "kauditd hold queue
 * overflow") and "audit: rate limit exceeded" / "backlog limit exceeded".
 * So `lost` is a lower bound: one per such line, and the growth of the total
 * between two of its lines beyond that.
 */
export class AuditLoss {
  /** audit records known to be dropped */
  lost = 0;
  /** other printk_ratelimit() callers' suppressed counts: the window is shared, so some may have been audit records */
  sharedSuppressed = 0;
  private lastTotal?: number;
  private sinceTotal = 0;

  /** take one kmsg line; true when it was a sign of loss */
  take(line: string): boolean {
    const text = line.slice(line.indexOf(';') + 1);
    let m = /^(\w+): (\d+) callbacks suppressed/.exec(text);
    if (m) {
      if (m[1] === 'kauditd_printk_skb') this.lost += Number(m[2]);
      else this.sharedSuppressed += Number(m[2]);
      return true;
    }
    if (/^audit: (rate|backlog) limit exceeded/.test(text)) {
      this.lost++;
      this.sinceTotal++;
      return true;
    }
    m = /^audit: audit_lost=(\d+) /.exec(text);
    if (m) {
      const total = Number(m[1]);
      if (this.lastTotal !== undefined) this.lost += Math.max(0, total - this.lastTotal - this.sinceTotal);
      this.lastTotal = total;
      this.sinceTotal = 0;
      return true;
    }
    return false;
  }
}
