// SPDX-License-Identifier: GPL-2.0
/* trace/capabilities: every capability check, from the capability/cap_capable
 * tracepoint (the kernel's decision, after user namespaces are walked). The
 * tracepoint carries no CAP_OPT_* bits, so IG's audit and insetid are not
 * known here. The syscall comes from the task's saved user registers
 * (orig_ax on x86-64), which costs nothing on the syscall path, unlike a
 * sys_enter hook remembering every syscall of every thread. */
#include "include/filter.h"
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

SEC("tracepoint/capability/cap_capable")
int cap_capable(struct trace_event_raw_cap_capable *ctx)
{
	int cap = ctx->cap;
	if (targ_caps && (cap < 0 || cap > 63 || !(targ_caps & (1ULL << cap))))
		return 0;
	if (gadget_skip_current())
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (targ_unique) {
		struct unique_key key = { .tgid = pid_tgid >> 32, .cap = cap };
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
	e->target_userns = BPF_CORE_READ(ctx, target_ns, ns.inum);
	e->cap = cap;
	e->ret = ctx->ret;
	e->syscall = current_syscall(task);
	e->__pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	gadget_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
