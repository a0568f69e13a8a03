// SPDX-License-Identifier: GPL-2.0
/* trace/open: open, openat and openat2. The arguments are remembered at
 * syscall entry (per thread) and the event is emitted at exit with the fd or
 * the error; the path is read at exit from the still-valid user pointer. */
#include "include/filter.h"
#include "include/entry.h"
#include "include/ringbuf.h"
#include "trace_open.h"

GADGET_EVENT(open_event);

struct open_args {
	__u64 fname;
	__u32 flags;
	__u32 mode;
};

GADGET_ENTRY_MAP(start, struct open_args);

static __always_inline int enter(__u64 fname, __u32 flags, __u32 mode)
{
	if (gadget_skip_current())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args args = { .fname = fname, .flags = flags, .mode = mode };
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

static __always_inline int leave(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *args = bpf_map_lookup_elem(&start, &tid);
	if (!args)
		return 0;

	struct open_event *e = gadget_reserve(sizeof(*e));
	if (e) {
		gadget_fill_task(e, (struct task_struct *)bpf_get_current_task());
		e->ret = (__s32)ctx->ret;
		e->flags = args->flags;
		e->mode = args->mode;
		e->__pad = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		if (bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)args->fname) < 0)
			e->path[0] = 0;
		gadget_submit(e);
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter(ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter(ctx->args[1], (__u32)how.flags, (__u32)how.mode);
}

SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

char LICENSE[] SEC("license") = "GPL";
