#ifndef AUDIT_SECCOMP_H
#define AUDIT_SECCOMP_H

#include "include/event_head.h"

/* Which mechanism saw a seccomp action (the event's `source`). */
#define SECCOMP_SOURCE_SIGSYS 1 /* tp_btf/signal_generate: SIGSYS with si_code SYS_SECCOMP */
#define SECCOMP_SOURCE_EXIT 2   /* a sys_exit without its sys_enter: the filter skipped the syscall */
#define SECCOMP_SOURCE_AUDIT 3  /* the kernel's audit record (type 1326), read by user space from /dev/kmsg */

/* SECCOMP_RET_* action bits (include/uapi/linux/seccomp.h) the kernel side reports */
#define SECCOMP_ACTION_KILL_PROCESS 0x80000000U
#define SECCOMP_ACTION_TRAP 0x00030000U
#define SECCOMP_ACTION_ERRNO 0x00050000U

/* The kinds the de-duplication counts by: what the BPF side can tell apart.
 * An audit record of the same process, syscall and kind that a BPF event
 * already counted is the same action seen twice (src/gadgets/audit/seccomp/). */
#define SECCOMP_KIND_KILL 1 /* kill_process, kill_thread */
#define SECCOMP_KIND_TRAP 2
#define SECCOMP_KIND_SKIP 3 /* errno, and trace/user_notif that failed the syscall */

/* One syscall a seccomp filter acted on. User space writes the same struct
 * for an audit record (source SECCOMP_SOURCE_AUDIT), so both sources share
 * one codec, one filter and one sink. */
struct seccomp_event {
	GADGET_EVENT_HEAD; /* tid is 0 for an audit record: it names the process only */
	__u32 action;    /* SECCOMP_RET_* action bits */
	__s32 syscall;   /* the syscall number (of `arch`) */
	__u32 arch;      /* AUDIT_ARCH_* (0xc000003e x86-64, 0x40000003 i386) */
	__s32 ret;       /* SOURCE_EXIT: the syscall's return (-errno); else 0 */
	__u32 source;    /* SECCOMP_SOURCE_* */
	__u32 pad;
	char comm[16];
};

/* Key of `reported`: one count per process, syscall and kind. */
struct seccomp_key {
	__u32 tgid;
	__s32 syscall;
	__u32 kind;
	__u32 pad;
};

/* Value of `tasks`: the identity of a process in scope, for its audit
 * records (which carry only the pid). */
struct seccomp_task {
	__u64 cgroup_id;
	__u64 mntns_id;
};

#endif
