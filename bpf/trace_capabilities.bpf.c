// SPDX-License-Identifier: GPL-2.0
/* trace/capabilities: every capability check, as cap_capable decides it
 * (after user namespaces are walked), from one of three hooks with the same
 * event and values: the capability/cap_capable tracepoint (Linux 6.14+), or
 * on older kernels fexit on cap_capable (arguments and result at once), or
 * a kprobe keeping the arguments per thread for the kretprobe's result.
 * cap_capable(cred, targ_ns, cap, opts): the tracepoint carries no CAP_OPT_*
 * bits, so IG's audit and insetid are not reported by any hook (a field
 * that some kernels cannot fill would make a recipe mean different things
 * on different kernels). The syscall comes from the task's saved user
 * registers (orig_ax on x86-64), which costs nothing on the syscall path,
 * unlike a sys_enter hook remembering every syscall of every thread. */
#include "include/entry.h"
#include "include/filter.h"
#include <bpf/bpf_tracing.h>
#include "include/ringbuf.h"
#include "trace_capabilities.h"

GADGET_EVENT(cap_event);

/* Bit n set: report capability n (all when 0); set from the `caps` param. */
const volatile __u64 targ_caps = 0;
/* Report each (process, capability) once (the `unique` param). */
const volatile bool targ_unique = false;

struct unique_key {
	__u32 tgid;
	__s32 cap;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct unique_key);
	__type(value, __u8);
} seen SEC(".maps");

static __always_inline __s32 current_syscall(struct task_struct *task)
{
	if (BPF_CORE_READ(task, flags) & 0x00200000 /* PF_KTHREAD */)
		return -1;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
#if defined(__TARGET_ARCH_x86)
	return (__s32)BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	return (__s32)BPF_CORE_READ(regs, syscallno);
#else
	return -1;
#endif
}

/* Whether a check of `cap` in the current task is wanted: the caps param, then the task filters. */
static __always_inline bool wanted(int cap)
{
	if (targ_caps && (cap < 0 || cap > 63 || !(targ_caps & (1ULL << cap))))
		return false;
	return !gadget_skip_current();
}

/* The event of a wanted check (unless `unique` has seen it in this process). */
static __always_inline int report(int cap, int ret, __u64 target_userns)
{
	if (targ_unique) {
		struct unique_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .cap = cap };
		__u8 one = 1;
		/* fails with -EEXIST when this process already reported it */
		if (bpf_map_update_elem(&seen, &key, &one, BPF_NOEXIST))
			return 0;
	}

	struct cap_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	gadget_fill_task(e, task);
	e->target_userns = target_userns;
	e->cap = cap;
	e->ret = ret;
	e->syscall = current_syscall(task);
	e->__pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	gadget_submit(e);
	return 0;
}

SEC("tracepoint/capability/cap_capable")
int cap_capable(struct trace_event_raw_cap_capable *ctx)
{
	if (!wanted(ctx->cap))
		return 0;
	return report(ctx->cap, ctx->ret, BPF_CORE_READ(ctx, target_ns, ns.inum));
}

SEC("fexit/cap_capable")
int BPF_PROG(cap_capable_fexit, const struct cred *cred, struct user_namespace *targ_ns, int cap,
	     unsigned int opts, int ret)
{
	if (!wanted(cap))
		return 0;
	return report(cap, ret, BPF_CORE_READ(targ_ns, ns.inum));
}

/* A wanted check between the kprobe and the kretprobe. */
struct cap_call {
	__u64 target_userns;
	__s32 cap;
	__u32 __pad;
};

GADGET_ENTRY_MAP(calls, struct cap_call);

SEC("kprobe/cap_capable")
int BPF_KPROBE(cap_capable_entry, const struct cred *cred, struct user_namespace *targ_ns, int cap)
{
	if (!wanted(cap))
		return 0;
	struct cap_call call = { .target_userns = BPF_CORE_READ(targ_ns, ns.inum), .cap = cap };
	__u32 tid = gadget_current_tid();
	bpf_map_update_elem(&calls, &tid, &call, BPF_ANY);
	return 0;
}

SEC("kretprobe/cap_capable")
int BPF_KRETPROBE(cap_capable_return, int ret)
{
	__u32 tid = gadget_current_tid();
	struct cap_call *found = bpf_map_lookup_elem(&calls, &tid);
	if (!found)
		return 0; /* not wanted, or entered before the probe was attached */
	struct cap_call call = *found;
	bpf_map_delete_elem(&calls, &tid);
	return report(call.cap, ret, call.target_userns);
}

char LICENSE[] SEC("license") = "GPL";
