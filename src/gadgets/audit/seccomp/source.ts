/**
 * audit/seccomp's second source: the kernel's seccomp audit records, from the
 * audit netlink socket's read-only multicast group (./netlink.ts)
 * or else /dev/kmsg (./kmsg.ts), written as the gadget's own struct
 * (source "audit") into the stream's sink (UserSource, src/steps/types.ts). They are the only way to see the
 * LOG action (the syscall runs), kill_thread of one thread among several (no
 * signal), and the exact action of a trace or user_notif.
 *
 * A record names only the process. Its cgroup and mount namespace come from
 * the `tasks` map the BPF side fills for processes in scope running under a
 * filter: a record of a process not there is out of the step's scope (when
 * it has one) or gets 0s. An action the BPF side reported too (a kill's
 * SIGSYS, an errno's exit without enter) is counted in `reported`; a record
 * matching a count not yet used up is that event seen twice and is dropped.
 * The BPF side counts synchronously in the acting task, kauditd prints the
 * record later from its own thread, so holding each record HOLD_MS is enough
 * for the count to be there.
 */
import fs from 'node:fs';
import type { BtfStruct } from '../../../ebpf/btf.ts';
import type { BpfObject } from '../../../ebpf/object.ts';
import { native } from '../../../ebpf/libbpf.ts';
import { buildCodec } from '../../../steps/codec.ts';
import type { GadgetDefinition, RecordSink, StepContext, UserSource } from '../../../steps/types.ts';

import { AuditMulticast } from './netlink.ts';
import { AuditLoss, KmsgReader, parseSeccompRecord, parseSeccompText, type SeccompAuditRecord } from './kmsg.ts';

/** bpf/audit_seccomp.h */
export const SOURCE_AUDIT = 3;
const KIND_KILL = 1;
const KIND_TRAP = 2;
const KIND_SKIP = 3;
const KIND_OF: Readonly<Record<string, number>> = {
  kill_process: KIND_KILL, kill_thread: KIND_KILL, trap: KIND_TRAP,
  errno: KIND_SKIP, trace: KIND_SKIP, user_notif: KIND_SKIP,
};
const ACTION_BITS: Readonly<Record<string, number>> = {
  kill_process: 0x80000000, kill_thread: 0, trap: 0x30000, errno: 0x50000, user_notif: 0x7fc00000, trace: 0x7ff00000, log: 0x7ffc0000,
};

const HOLD_MS = 50;
/** AUDIT_SECCOMP, the record type of include/uapi/linux/audit.h */
const AUDIT_SECCOMP = 1326;

/** What the kernel's audit path will log here, from its knobs: the actions seccomp logs and whether audit is on. */
export function auditLogProbe(): { logged: Set<string>; why?: string } {
  try {
    if (/(^|\s)audit=(0|off)(\s|$)/.test(fs.readFileSync('/proc/cmdline', 'utf8'))) return { logged: new Set(), why: 'audit is disabled (audit=0 on the kernel command line)' };
    const logged = new Set(fs.readFileSync('/proc/sys/kernel/seccomp/actions_logged', 'utf8').trim().split(/\s+/));
    return { logged };
  } catch (err) {
    return { logged: new Set(), why: `kernel.seccomp.actions_logged cannot be read (${(err as NodeJS.ErrnoException).code}): no seccomp audit support (CONFIG_SECCOMP_FILTER, CONFIG_AUDIT)` };
  }
}

/** The pid of a running auditd (its pid file names a live process), else undefined. */
function auditdPid(): number | undefined {
  try {
    const pid = Number(fs.readFileSync('/run/auditd.pid', 'utf8').trim());
    return pid > 0 && fs.existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Where the audit records are read: the audit netlink multicast group, else /dev/kmsg (auto), one of them, or none. */
export type AuditFeedChoice = 'auto' | 'netlink' | 'kmsg' | 'none';

/** A reader of seccomp audit records, and what it knows it missed. */
interface AuditFeed {
  name: 'netlink' | 'kmsg';
  read(onRecord: (r: SeccompAuditRecord) => void): void;
  /** records known to be lost so far */
  lost(): number;
  /** why records went missing, once the step is over; `watched`: a watched process ran under a filter (losses count) */
  lossWarnings(watched: boolean): string[];
  close(): void;
}

const countedAs = (watched: boolean) => (watched ? 'counted as lost' : 'not counted as lost: no watched process ran under a seccomp filter');

function netlinkFeed(): AuditFeed {
  const nl = new AuditMulticast();
  return {
    name: 'netlink',
    read: (onRecord) => nl.read((type, text) => type === AUDIT_SECCOMP && onRecord(parseSeccompText(text))),
    lost: () => nl.overruns,
    lossWarnings: (watched) => (nl.overruns ? [`the audit netlink socket overflowed ${nl.overruns} times (${countedAs(watched)}, one each: how many records went is not known)`] : []),
    close: () => nl.close(),
  };
}

function kmsgFeed(): AuditFeed {
  const auditd = auditdPid();
  if (auditd) throw new Error(`auditd (pid ${auditd}) receives the audit records, so they do not reach /dev/kmsg (see /var/log/audit/audit.log)`);
  const kmsg = new KmsgReader('end');
  const loss = new AuditLoss();
  return {
    name: 'kmsg',
    read: (onRecord) =>
      kmsg.read((line) => {
        const r = parseSeccompRecord(line);
        if (r) onRecord(r);
        else loss.take(line);
      }),
    lost: () => loss.lost + kmsg.overwritten,
    lossWarnings: (watched) => [
      // the ratelimit's "callbacks suppressed" line comes only when its window reopens, often after the step
      ...(watched ? ['audit records came from /dev/kmsg, through printk_ratelimit() (10 per 5 s, node-wide): log events beyond it are missing, and the kernel says so only later; the audit netlink socket (params.audit: netlink, CAP_AUDIT_READ) has no such limit'] : []),
      ...(kmsg.overwritten ? [`${kmsg.overwritten} kernel log records were overwritten before they were read (${countedAs(watched)}): any could have been a seccomp audit record`] : []),
      ...(loss.lost ? [`the kernel dropped at least ${loss.lost} audit records (printk ratelimit or audit rate/backlog limit; ${countedAs(watched)}): log actions among them are not reported`] : []),
      ...(loss.sharedSuppressed ? [`${loss.sharedSuppressed} ratelimited kernel messages were suppressed in the window audit records share (printk_ratelimit): some may have been seccomp audit records`] : []),
    ],
    close: () => kmsg.close(),
  };
}

/** The feed the step asked for; `auto` falls back from netlink to kmsg, saying why in `warnings`. */
function openFeed(choice: AuditFeedChoice, warnings: string[]): AuditFeed | undefined {
  if (choice === 'none') return undefined;
  if (choice === 'netlink') return netlinkFeed();
  if (choice === 'kmsg') return kmsgFeed();
  try {
    return netlinkFeed();
  } catch (nlErr) {
    try {
      const feed = kmsgFeed();
      warnings.push(`${(nlErr as Error).message}: audit records are read from /dev/kmsg, where printk's ratelimit drops some on a busy node`);
      return feed;
    } catch (kmsgErr) {
      warnings.push(`audit records are not read (${(nlErr as Error).message}; ${(kmsgErr as Error).message}): the log action and kill_thread of one thread among several are not seen`);
      return undefined;
    }
  }
}

export function openSeccompAuditSource(def: GadgetDefinition, obj: BpfObject, layout: BtfStruct, ctx: StepContext): UserSource {
  const warnings: string[] = [];
  const probe = auditLogProbe();
  const choice = (ctx.params.audit as AuditFeedChoice | undefined) ?? 'auto';
  if (probe.why && choice !== 'none') warnings.push(`${probe.why}: the log action and kill_thread of one thread among several are not seen; kill_process, trap and errno are (SIGSYS, exit without enter)`);
  const notLogged = ['log', 'kill_thread', 'kill_process', 'errno', 'trap', 'trace', 'user_notif'].filter((a) => !probe.why && !probe.logged.has(a));
  if (notLogged.length && choice !== 'none') warnings.push(`kernel.seccomp.actions_logged leaves out ${notLogged.join(', ')}: no audit record of ${notLogged.length > 1 ? 'those' : 'that'} (sysctl -w kernel.seccomp.actions_logged="kill_process kill_thread trap errno user_notif trace log")`);
  let feed = probe.why ? undefined : openFeed(choice, warnings);

  const at = (name: string) => {
    const m = layout.members.find((x) => x.name === name);
    if (!m) throw new Error(`${def.id}: struct ${layout.name} has no member ${name} (bpf/audit_seccomp.h)`);
    return m.offset;
  };
  const o = {
    timestamp: at('timestamp'), cgroup_id: at('cgroup_id'), mntns_id: at('mntns_id'), pid: at('pid'), tid: at('tid'), uid: at('uid'), gid: at('gid'),
    action: at('action'), syscall: at('syscall'), arch: at('arch'), ret: at('ret'), source: at('source'), comm: at('comm'),
  };
  const buf = Buffer.alloc(layout.size);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  // the whole filter: the kernel's share of it never ran on these records
  const codec = buildCodec(def, layout, { buf, dv }, ctx.filter, { bootToWallNs: ctx.bootToWallNs });
  const tasks = obj.hashMap('tasks');
  const tasksFd = obj.mapFd('tasks');
  const firstKey = Buffer.alloc(4);
  // Lost records count only when a watched process ran under a filter (it is in `tasks`): the
  // kernel log's loss signs are node-wide, and without such a process none of them was ours.
  const watched = () => native().bpf_map_get_next_key(tasksFd, null, firstKey) === 0;
  const lost = () => (feed && watched() ? feed.lost() : 0);
  const reported = obj.hashMap('reported');
  const scoped = !!ctx.cgroup || !!ctx.containers;
  const used = new Map<string, bigint>();
  let pending: { r: SeccompAuditRecord; at: number }[] = [];

  const key = Buffer.alloc(16);
  /** true when the BPF side reported this action and this record is its second sighting */
  const seenByBpf = (r: SeccompAuditRecord): boolean => {
    const kind = KIND_OF[r.action];
    if (!kind) return false;
    key.writeUInt32LE(r.pid, 0);
    key.writeInt32LE(r.syscall_nr | 0, 4);
    key.writeUInt32LE(kind, 8);
    const count = reported.lookup(key)?.readBigUInt64LE(0);
    if (count === undefined) return false;
    const k = key.toString('hex');
    let n = used.get(k) ?? 0n;
    if (n > count) n = 0n; // an LRU eviction restarted the kernel's count
    if (n >= count) return false;
    used.set(k, n + 1n);
    return true;
  };

  const pidKey = Buffer.alloc(4);
  const emit = (r: SeccompAuditRecord, sink: RecordSink) => {
    if (seenByBpf(r)) return;
    pidKey.writeUInt32LE(r.pid, 0);
    const task = tasks.lookup(pidKey);
    if (!task && scoped) return;
    buf.fill(0);
    // the record's wall-clock stamp (ms) as boot time, which the codec turns back into wall time
    dv.setBigUint64(o.timestamp, BigInt(r.wallMs) * 1_000_000n - ctx.bootToWallNs, true);
    if (task) {
      dv.setBigUint64(o.cgroup_id, task.readBigUInt64LE(0), true);
      dv.setBigUint64(o.mntns_id, task.readBigUInt64LE(8), true);
    }
    dv.setUint32(o.pid, r.pid, true);
    dv.setUint32(o.uid, r.uid >>> 0, true);
    dv.setUint32(o.gid, r.gid >>> 0, true);
    dv.setUint32(o.action, ACTION_BITS[r.action] ?? (r.code >>> 0), true);
    dv.setInt32(o.syscall, r.syscall_nr | 0, true);
    dv.setUint32(o.arch, parseInt(r.arch, 16) >>> 0, true);
    dv.setUint32(o.source, SOURCE_AUDIT, true);
    buf.write(r.comm, o.comm, 15, 'utf8');
    sink(codec, 0, layout.size);
  };

  const readNew = () => feed?.read((r) => pending.push({ r, at: Date.now() }));
  const release = (sink: RecordSink, before: number) => {
    if (!pending.length) return;
    const ready = pending.filter((p) => p.at <= before);
    if (!ready.length) return;
    pending = pending.filter((p) => p.at > before);
    for (const p of ready) emit(p.r, sink);
  };

  return {
    drain(sink) {
      readNew();
      release(sink, Date.now() - HOLD_MS);
    },
    finish(sink) {
      readNew();
      release(sink, Infinity);
      return { lost: lost(), warnings: [...warnings, ...(feed?.lossWarnings(watched()) ?? [])] };
    },
    lost,
    close() {
      feed?.close();
      feed = undefined;
    },
  };
}
