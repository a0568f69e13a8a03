// SPDX-License-Identifier: GPL-2.0
/* trace/signal: every signal the kernel generates (tp_btf/signal_generate,
 * Linux 5.5+ for tp_btf), with its sender, target, si_code and what became
 * of it, plus every kill-family syscall that failed before a signal existed
 * (ESRCH, EPERM, EINVAL: signal_generate never fires for those), remembered
 * at sys_enter per thread and emitted at sys_exit.
 *
 * The sender is the current task. For kill(2) and friends that is the
 * process that called them; for a signal the kernel raises on a task's
 * behalf (SIGSEGV from a fault, SIGPIPE, SIGXCPU, SIGSYS from seccomp) it is
 * the task itself, so pid == tpid; for SIGCHLD it is the exiting child. */
#include "include/filter.h"
#include "include/entry.h"
#include "include/ringbuf.h"
#include "trace_signal.h"
#include <bpf/bpf_tracing.h>

GADGET_EVENT(signal_event);

/* params: only this signal / only failed sends / only this target process (0: all) */
const volatile __s32 targ_signal = 0;
const volatile bool targ_failed_only = false;
const volatile __s32 targ_tpid = 0;

#define SI_USER 0
#define SI_KERNEL 0x80
#define SI_TKILL (-6)

struct send {
	__s32 tpid;
	__s32 ttid;
	__s32 signal;
	__s32 code;
};

GADGET_ENTRY_MAP(sends, struct send);

static __always_inline bool signal_skipped(int sig)
{
	return targ_signal && sig != targ_signal;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	if (targ_failed_only || signal_skipped(sig))
		return 0;
	__s32 tpid = BPF_CORE_READ(task, tgid);
	if (targ_tpid && tpid != targ_tpid)
		return 0;
	if (gadget_skip_current())
		return 0;

	struct signal_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return 0;
	gadget_fill_task(e, (struct task_struct *)bpf_get_current_task());
	e->tpid = tpid;
	e->ttid = BPF_CORE_READ(task, pid);
	e->signal = sig;
	/* SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) are not pointers; the
	 * tracepoint itself reports them as SI_USER and SI_KERNEL */
	if ((unsigned long)info == 0)
		e->code = SI_USER;
	else if ((unsigned long)info == 1)
		e->code = SI_KERNEL;
	else
		e->code = BPF_CORE_READ(info, si_code);
	e->result = result;
	e->ret = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPF_CORE_READ_STR_INTO(&e->tcomm, task, comm);
	gadget_submit(e);
	return 0;
}

/* a send's target, signal and code, kept until its syscall returns */
static __always_inline int enter(__s32 tpid, __s32 ttid, __s32 sig, __s32 code)
{
	if (signal_skipped(sig) || (targ_tpid && tpid != targ_tpid))
		return 0;
	if (gadget_skip_current())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct send s = { .tpid = tpid, .ttid = ttid, .signal = sig, .code = code };
	bpf_map_update_elem(&sends, &tid, &s, BPF_ANY);
	return 0;
}

static __always_inline int leave(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct send *s = bpf_map_lookup_elem(&sends, &tid);
	if (!s)
		return 0;
	if (ctx->ret < 0) {
		struct signal_event *e = gadget_reserve(sizeof(*e));
		if (e) {
			gadget_fill_task(e, (struct task_struct *)bpf_get_current_task());
			e->tpid = s->tpid;
			e->ttid = s->ttid;
			e->signal = s->signal;
			e->code = s->code;
			e->result = SIGNAL_RESULT_FAILED;
			e->ret = (__s32)ctx->ret;
			bpf_get_current_comm(e->comm, sizeof(e->comm));
			e->tcomm[0] = 0;
			gadget_submit(e);
		}
	}
	bpf_map_delete_elem(&sends, &tid);
	return 0;
}

/* si_code of a siginfo_t the caller passes (si_signo, si_errno, si_code, ...) */
static __always_inline __s32 user_code(__u64 uinfo, __s32 none)
{
	__s32 code = none;
	if (uinfo)
		bpf_probe_read_user(&code, sizeof(code), (void *)(uinfo + 8));
	return code;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int enter_kill(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], 0, ctx->args[1], SI_USER);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int enter_tkill(struct trace_event_raw_sys_enter *ctx)
{
	/* tkill names a thread only: its process is not known here */
	return enter(ctx->args[0], ctx->args[0], ctx->args[1], SI_TKILL);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int enter_tgkill(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], ctx->args[1], ctx->args[2], SI_TKILL);
}

SEC("tracepoint/syscalls/sys_enter_rt_sigqueueinfo")
int enter_rt_sigqueueinfo(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], 0, ctx->args[1], user_code(ctx->args[2], SI_USER));
}

SEC("tracepoint/syscalls/sys_enter_rt_tgsigqueueinfo")
int enter_rt_tgsigqueueinfo(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], ctx->args[1], ctx->args[2], user_code(ctx->args[3], SI_USER));
}

SEC("tracepoint/syscalls/sys_enter_pidfd_send_signal")
int enter_pidfd_send_signal(struct trace_event_raw_sys_enter *ctx)
{
	/* the target is a pidfd: its pid is not resolved, so tpid is 0 and a
	 * targ_tpid filter skips these */
	return enter(0, 0, ctx->args[1], user_code(ctx->args[2], SI_USER));
}

SEC("tracepoint/syscalls/sys_exit_kill")
int exit_kill(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_tkill")
int exit_tkill(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_tgkill")
int exit_tgkill(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_rt_sigqueueinfo")
int exit_rt_sigqueueinfo(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_rt_tgsigqueueinfo")
int exit_rt_tgsigqueueinfo(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_pidfd_send_signal")
int exit_pidfd_send_signal(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

char LICENSE[] SEC("license") = "GPL";
