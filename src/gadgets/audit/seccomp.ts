import { openSeccompAuditSource, auditLogProbe } from './seccomp/source.ts';
import { SECCOMP_ACTIONS } from './seccomp/kmsg.ts';
import { errnoFields, field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { SYSCALLS_X86_64 } from '../../steps/names/syscalls-x86_64.ts';
import type { StreamGadget, UserSource } from '../../steps/types.ts';

/** AUDIT_ARCH_* of the syscall tables (include/uapi/linux/audit.h) */
const ARCHS: Readonly<Record<number, string>> = { 0xc000003e: 'x86_64', 0x40000003: 'i386' };

/** bpf/audit_seccomp.h SECCOMP_SOURCE_* */
const SOURCES: Readonly<Record<number, string>> = { 1: 'sigsys', 2: 'exit_without_enter', 3: 'audit' };

/** the longest syscall name, quoted, or a number's text */
const SYSCALL_NAME_BYTES = 2 + Math.max(11, ...Object.values(SYSCALLS_X86_64).map((n) => n.length));

const DESCRIPTION =
  'Syscalls seccomp filters blocked or logged, with the action (kill_process, kill_thread, trap, errno, log, user_notif, trace), ' +
  'from three sources merged into one stream, each action reported once (`source`): sigsys — the SIGSYS of a trap or kill ' +
  '(tp_btf/signal_generate, si_code SYS_SECCOMP; a last thread\'s kill_thread shows as kill_process); exit_without_enter — a syscall ' +
  'the filter skipped exits without its sys_enter (tp_btf sys_enter/sys_exit, threads seen entering after attach; reported as errno with ' +
  'the returned errno, which a trace or user_notif that failed the syscall looks like too, as does a syscall a ptrace tracer skipped in a filtered task); audit — the kernel\'s seccomp audit records ' +
  '(type 1326) from the audit netlink socket\'s read-only multicast group (Linux 3.16+, CAP_AUDIT_READ; next to auditd, if any), ' +
  'else /dev/kmsg (no auditd; printk ratelimits it, 10 per 5 s node-wide, counted as lost): the only sight of log and of ' +
  'kill_thread among several threads, and of errno, trap, trace, user_notif only for filters installed with ' +
  'SECCOMP_FILTER_FLAG_LOG; a record names the process only (tid 0). Linux 5.11+ (task storage); x86-64';

function describeHere(): string {
  const { logged, why } = auditLogProbe();
  if (why) return `${DESCRIPTION}. This kernel: ${why}, so kill_process, trap, errno only`;
  const viaAudit = ['log', 'kill_thread', 'user_notif', 'trace'].filter((a) => logged.has(a));
  return `${DESCRIPTION}. This kernel: kill_process, trap, errno always; ${viaAudit.join(', ') || 'nothing more'} through its audit records (kernel.seccomp.actions_logged)`;
}

export const auditSeccomp = {
  id: 'audit/seccomp',
  get description() {
    return describeHere();
  },
  mode: 'stream',
  // a thread of the canary loads its own filter failing getppid with EPERM and calls it: the
  // BPF hooks see the exit without an enter whatever params.audit says (no audit record is made)
  liveness: { canary: ['seccomp'] },
  object: 'audit_seccomp.bpf.o',
  struct: 'seccomp_event',
  fields: [
    field.timestamp,
    field.pid,
    { ...field.tid, description: 'thread id; 0 when only the audit record saw it (it names the process)' },
    field.comm,
    { name: 'action', type: 'string', decode: 'enum', names: SECCOMP_ACTIONS, description: 'what the filter returned: kill_process, kill_thread, trap, errno, log, user_notif, trace' },
    { name: 'syscall_nr', member: 'syscall', type: 'number', description: 'the syscall number (of arch)' },
    { name: 'arch', type: 'string', decode: 'enum', names: ARCHS, description: 'the syscall ABI: x86_64, i386 (the AUDIT_ARCH_* value otherwise)' },
    {
      name: 'syscall', type: 'string', decode: 'derive', description: 'the syscall\'s name (x86-64 table; the number as text for another ABI)',
      derive: { from: ['syscall_nr', 'arch'], fn: (nr: number, arch: string) => (arch === 'x86_64' && SYSCALLS_X86_64[nr]) || String(nr), maxBytes: SYSCALL_NAME_BYTES },
    },
    { name: 'ret', type: 'number', description: 'exit_without_enter: what the skipped syscall returned (-errno, the filter\'s SECCOMP_RET_DATA); 0 otherwise' },
    ...errnoFields().map((f) => ({ ...f, description: f.name === 'err' ? 'exit_without_enter: the errno the filter returned (filters take names: err==EPERM); 0 otherwise' : 'the errno\'s name (EPERM), "" when there is none' })),
    { name: 'source', type: 'string', decode: 'enum', names: SOURCES, description: 'which mechanism saw it: sigsys, exit_without_enter, audit' },
    field.uid,
    field.gid,
    { ...field.mntns_id, description: 'mount namespace inode number; 0 for an audit record of a process the hooks never saw' },
    { ...field.cgroup_id, description: 'cgroup v2 id; 0 for an audit record of a process the hooks never saw' },
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [{ tracepoint: 'raw_syscalls/sys_enter' }, { tracepoint: 'raw_syscalls/sys_exit' }, { tracepoint: 'signal/signal_generate' }],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      audit: {
        type: 'string', enum: ['auto', 'netlink', 'kmsg', 'none'], default: 'auto',
        description: 'where the audit records are read: the audit netlink multicast group, else /dev/kmsg (auto); only one of them; none (the BPF hooks only: no log action)',
      },
    },
  },
  userSource(obj, layout, ctx): UserSource {
    return openSeccompAuditSource(this, obj, layout, ctx);
  },
} satisfies StreamGadget;
