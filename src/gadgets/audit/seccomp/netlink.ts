/**
 * The audit netlink socket's read-only multicast group (AUDIT_NLGRP_READLOG,
 * Linux 3.16+, CAP_AUDIT_READ): kauditd sends every audit record there as it
 * takes it from its queue, before (and whatever) it does with it next —
 * unicast to auditd or printk. Unlike /dev/kmsg it is not behind
 * printk_ratelimit() and works with auditd running; it does not take the
 * auditd role, so nothing else on the node changes.
 */
import fs from 'node:fs';
import { errno, native } from '../../../ebpf/libbpf.ts';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_AUDIT = 9;
const AUDIT_NLGRP_READLOG = 1;
const NLMSG_HDRLEN = 16;

export class AuditMulticast {
  /** times the socket's receive buffer overflowed (ENOBUFS): records went, how many is not known */
  overruns = 0;
  private readonly fd: number;
  private readonly buf = Buffer.alloc(64 * 1024);

  constructor() {
    const n = native();
    const fd = n.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_AUDIT);
    if (fd < 0) throw new Error(`socket(AF_NETLINK, NETLINK_AUDIT): errno ${errno()} — a kernel without CONFIG_AUDIT`);
    // struct sockaddr_nl: family, pad, pid (0: the kernel picks), groups (a bit mask)
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0);
    addr.writeUInt32LE(1 << (AUDIT_NLGRP_READLOG - 1), 8);
    if (n.bind(fd, addr, addr.length) < 0) {
      const e = errno();
      n.close(fd);
      throw new Error(`bind the audit netlink socket to its read-only multicast group: errno ${e} — needs CAP_AUDIT_READ in the initial user and network namespaces (Linux 3.16+)`);
    }
    this.fd = fd;
  }

  /** hand every record received since the last read to `onRecord` (its type and text) */
  read(onRecord: (type: number, text: string) => void): void {
    for (;;) {
      let len: number;
      try {
        len = fs.readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') return;
        if (code === 'ENOBUFS') {
          this.overruns++;
          continue;
        }
        throw new Error(`read the audit netlink socket: ${code}`, { cause: err });
      }
      for (let at = 0; at + NLMSG_HDRLEN <= len; ) {
        const msgLen = this.buf.readUInt32LE(at);
        if (msgLen < NLMSG_HDRLEN || at + msgLen > len) break;
        // the text may end with a NUL
        const end = this.buf.indexOf(0, at + NLMSG_HDRLEN);
        onRecord(this.buf.readUInt16LE(at + 4), this.buf.toString('utf8', at + NLMSG_HDRLEN, end < 0 || end > at + msgLen ? at + msgLen : end));
        at += (msgLen + 3) & ~3;
      }
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
