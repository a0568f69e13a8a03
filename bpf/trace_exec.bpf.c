// SPDX-License-Identifier: GPL-2.0
/* trace/exec: execve and execveat. Arguments are copied at syscall entry
 * (the argv pointers die with a successful exec), the event goes out at exit
 * with the result and the new comm. */
#include "include/filter.h"
#include "include/ringbuf.h"
#include "trace_exec.h"

GADGET_EVENT(exec_event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct exec_event);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} heap SEC(".maps");

static __always_inline int enter(const char *const *argv)
{
	if (gadget_skip_current())
		return 0;

	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	gadget_fill_task(e, task);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->ret = 0;
	e->args_count = 0;
	e->args_size = 0;
	e->args_truncated = 0;
	e->__pad = 0;
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, real_parent, comm);

	for (int i = 0; i < EXEC_MAX_ARGS; i++) {
		const char *arg = NULL;
		bpf_probe_read_user(&arg, sizeof(arg), &argv[i]);
		if (!arg)
			goto done;
		__u32 off = e->args_size;
		if (off > EXEC_ARGS_SIZE - EXEC_ARG_MAX) {
			e->args_truncated = 1;
			goto done;
		}
		long n = bpf_probe_read_user_str(&e->args[off], EXEC_ARG_MAX, arg);
		if (n <= 0)
			goto done;
		if (n == EXEC_ARG_MAX)
			e->args_truncated = 1;
		e->args_size += n;
		e->args_count++;
	}
	/* more than EXEC_MAX_ARGS arguments */
	{
		const char *arg = NULL;
		bpf_probe_read_user(&arg, sizeof(arg), &argv[EXEC_MAX_ARGS]);
		if (arg)
			e->args_truncated = 1;
	}
done:
	bpf_map_update_elem(&execs, &e->pid, e, BPF_ANY);
	return 0;
}

static __always_inline int leave(struct trace_event_raw_sys_exit *ctx)
{
	/* keyed by tgid: an exec from a second thread leaves with the leader's pid */
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct exec_event *e = bpf_map_lookup_elem(&execs, &tgid);
	if (!e)
		return 0;
	e->ret = (__s32)ctx->ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (e->ret == 0) {
		/* the new image's argv, which the kernel just copied: always resident,
		 * unlike the caller's strings at entry */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		__u64 start = BPF_CORE_READ(task, mm, arg_start);
		__u64 len = BPF_CORE_READ(task, mm, arg_end) - start;
		__u32 truncated = len > EXEC_ARGS_SIZE;
		if (truncated)
			len = EXEC_ARGS_SIZE;
		if (len > 0 && bpf_probe_read_user(e->args, len, (void *)start) == 0) {
			e->args_size = len;
			e->args_truncated = truncated;
		}
	}
	__u64 size = offsetof(struct exec_event, args) + e->args_size;
	if (size > sizeof(*e))
		size = sizeof(*e);
	gadget_output(e, size);
	bpf_map_delete_elem(&execs, &tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

char LICENSE[] SEC("license") = "GPL";
