// SPDX-License-Identifier: GPL-2.0
/* audit/seccomp: syscalls a seccomp filter blocked, from two kernel hooks
 * (no kprobe on audit_seccomp here):
 *
 * - tp_btf/signal_generate: the SIGSYS of a TRAP, KILL_PROCESS or (a
 *   process's last thread) KILL_THREAD action, si_code SYS_SECCOMP, whose
 *   siginfo carries the syscall number and arch. A kill marks the task
 *   SECCOMP_MODE_DEAD before it signals, which tells it from a trap. The
 *   skipped syscall exits after it (a kill too: the task dies in signal
 *   delivery), so that exit is not reported again.
 * - tp_btf/sys_enter + sys_exit: seccomp runs before the sys_enter
 *   tracepoint, so a syscall the filter skipped (ERRNO; TRACE and USER_NOTIF
 *   that fail it) exits without having entered. A per-thread flag set at
 *   enter and cleared at exit shows it; only threads seen entering after
 *   attach count (a thread blocked in a syscall at attach also exits
 *   without an enter we saw).
 *
 * The LOG action lets the syscall run: only the kernel's audit record sees
 * it, and user space reads those (src/gadgets/audit/seccomp/kmsg.ts). For its
 * records, which carry only a pid, the hooks leave in `tasks` the cgroup and
 * mount namespace of every process in scope that runs under a filter, and in
 * `reported` a count per (process, syscall, kind) of what they emitted, so an
 * action both sides saw is reported once.
 *
 * Cost: every syscall of the node runs both sys_enter and sys_exit hooks;
 * a task without a filter returns after one load (task->seccomp.mode); a
 * filtered task does a task-storage lookup at each end, and the scope check
 * (helper calls) once per thread, its answer kept in the thread's state. */
#include "include/filter.h"
#include "include/ringbuf.h"
#include "audit_seccomp.h"
#include <bpf/bpf_tracing.h>

GADGET_EVENT(seccomp_event);

#define SIGSYS 31
#define SYS_SECCOMP 1
#define SECCOMP_MODE_FILTER 2
/* kernel/seccomp.c: a task its filter killed, set before the SIGSYS */
#define SECCOMP_MODE_DEAD 3
#define AUDIT_ARCH_X86_64 0xc000003eU
/* x86-64 syscall numbers */
#define NR_CLONE 56
#define NR_FORK 57
#define NR_VFORK 58
#define NR_PRCTL 157
#define NR_SECCOMP 317
#define NR_CLONE3 435

struct thread_state {
	__u32 entered;    /* in a syscall whose sys_enter ran */
	__u32 signalled;  /* a seccomp SIGSYS was reported for the syscall now being skipped */
	__u32 registered; /* its process is in `tasks` */
	/* outside the step's scope or filters, decided once when the thread is
	 * first seen (a later exec that changes comm does not re-decide): a
	 * filtered task out of scope then costs a lookup, not the scope check's
	 * helper calls, on every syscall */
	__u32 out;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct seccomp_task);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct seccomp_key);
	__type(value, __u64);
} reported SEC(".maps");

static __always_inline bool filtered(struct task_struct *t)
{
	int mode = t->seccomp.mode;
	return mode == SECCOMP_MODE_FILTER || mode == SECCOMP_MODE_DEAD;
}

/* put the current process in `tasks` once per thread */
static __always_inline void register_task(struct task_struct *t, struct thread_state *s)
{
	if (s->registered)
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct seccomp_task v = { .cgroup_id = bpf_get_current_cgroup_id(), .mntns_id = gadget_task_mntns(t) };
	bpf_map_update_elem(&tasks, &tgid, &v, BPF_ANY);
	s->registered = 1;
}

static __always_inline void count_reported(__u32 tgid, __s32 nr, __u32 kind)
{
	struct seccomp_key k = { .tgid = tgid, .syscall = nr, .kind = kind };
	__u64 one = 1;
	__u64 *n = bpf_map_lookup_elem(&reported, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&reported, &k, &one, BPF_NOEXIST);
}

static __always_inline void emit(struct task_struct *t, __u32 action, __s32 nr, __u32 arch, __s32 ret, __u32 source, __u32 kind)
{
	struct seccomp_event *e = gadget_reserve(sizeof(*e));
	if (e) {
		gadget_fill_task(e, t);
		e->action = action;
		e->syscall = nr;
		e->arch = arch;
		e->ret = ret;
		e->source = source;
		e->pad = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		gadget_submit(e);
	}
	/* counted even when the ring was full: the event is lost (gadget_lost), not to be reported again */
	count_reported(bpf_get_current_pid_tgid() >> 32, nr, kind);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(seccomp_sigsys, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	/* SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) are not pointers */
	if (sig != SIGSYS || (unsigned long)info <= 1)
		return 0;
	if (BPF_CORE_READ(info, si_code) != SYS_SECCOMP)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	/* seccomp signals the current task; a SYS_SECCOMP siginfo sent to
	 * another one is a forgery (rt_sigqueueinfo) */
	if (task != t || gadget_skip_current())
		return 0;
	bool killed = t->seccomp.mode == SECCOMP_MODE_DEAD;
	struct thread_state *s = bpf_task_storage_get(&threads, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (s) {
		s->out = 0;
		register_task(t, s);
		/* the skipped syscall still exits, a kill's too (the task dies
		 * in signal delivery after it): that exit is this event */
		s->signalled = 1;
	}
	emit(t, killed ? SECCOMP_ACTION_KILL_PROCESS : SECCOMP_ACTION_TRAP,
	     BPF_CORE_READ(info, _sifields._sigsys._syscall), BPF_CORE_READ(info, _sifields._sigsys._arch),
	     0, SECCOMP_SOURCE_SIGSYS, killed ? SECCOMP_KIND_KILL : SECCOMP_KIND_TRAP);
	return 0;
}

/* the thread's state; a task with no local storage at all (most) costs one load, not a helper call */
static __always_inline struct thread_state *thread_state(struct task_struct *t)
{
	return t->bpf_storage ? bpf_task_storage_get(&threads, t, 0, 0) : NULL;
}

/* a thread seen for the first time: its state, with the scope decided */
static __always_inline struct thread_state *new_thread_state(struct task_struct *t)
{
	struct thread_state *s = bpf_task_storage_get(&threads, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (s) {
		s->out = gadget_skip_current();
		if (!s->out)
			register_task(t, s);
	}
	return s;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(seccomp_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	/* most tasks run without a filter: nothing to skip their syscalls */
	if (!filtered(t))
		return 0;
	struct thread_state *s = thread_state(t);
	if (!s)
		s = new_thread_state(t);
	if (s && !s->out)
		s->entered = 1;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(seccomp_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	if (!filtered(t))
		return 0;
	struct thread_state *s = thread_state(t);
	if (!s) {
		/* No state: a thread out of scope, not seen entering since
		 * attach, or one whose filter came after its sys_enter: the
		 * syscall that installed it (seccomp, prctl) or, in a child,
		 * the fork it returns from. Those did enter: from their exit on
		 * the thread is watched, so a filter's first syscall counts. */
		long nr = regs->orig_ax;
		if (nr == NR_SECCOMP || nr == NR_PRCTL || nr == NR_CLONE || nr == NR_CLONE3 || nr == NR_FORK || nr == NR_VFORK)
			new_thread_state(t);
		return 0;
	}
	if (s->out)
		return 0;
	if (s->entered) {
		s->entered = 0;
		return 0;
	}
	if (s->signalled) {
		s->signalled = 0;
		return 0;
	}
	/* x86-64: the syscall number stays in orig_ax; a 32-bit task's are i386 numbers */
	__u32 arch = (BPF_CORE_READ(t, thread_info.status) & 0x2 /* TS_COMPAT */) ? 0x40000003U : AUDIT_ARCH_X86_64;
	emit(t, SECCOMP_ACTION_ERRNO, (__s32)regs->orig_ax, arch, (__s32)ret, SECCOMP_SOURCE_EXIT, SECCOMP_KIND_SKIP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
