// SPDX-License-Identifier: GPL-2.0
/* trace/fsslower: reads, writes, opens and fsyncs of regular files slower
 * than min_ms, from syscall tracepoints (IG's fsslower hooks the file
 * system's own operations through kprobes, which this kernel lacks). At
 * entry the fd is resolved through the task's file table, so pipes, sockets
 * and files of other file systems cost one probe read and no map update;
 * the latency is measured from entry to exit. */
#include "include/filter.h"
#include "include/entry.h"
#include "include/ringbuf.h"
#include "include/files.h"
#include "trace_fsslower.h"

GADGET_EVENT(fsslower_event);

/* Slower than this (ns) is reported; 0 reports all. */
const volatile __u64 min_ns = 0;
/* Only files on this file system type (s_type->name); empty = any. */
const volatile char targ_fs[FSSLOWER_FS_MAX] = {};

struct fs_start {
	__u64 ts;
	__u64 file; /* struct file *, or for open the user pointer to the path */
	__u64 pos; /* pread/pwrite position; read/write: f_pos at entry */
	__u32 op;
	__u32 positional; /* pread64/pwrite64: pos is the argument */
};

GADGET_ENTRY_MAP(start, struct fs_start);

static __always_inline bool fs_matches(struct file *file)
{
	if (!targ_fs[0])
		return true;
	char fs[FSSLOWER_FS_MAX];
	gadget_file_fs_name(file, fs, sizeof(fs));
#pragma unroll
	for (int i = 0; i < FSSLOWER_FS_MAX; i++) {
		if (fs[i] != targ_fs[i])
			return false;
		if (!fs[i])
			return true;
	}
	return true;
}

/* the file `fd` names, when it is a regular file on the chosen fs */
static __always_inline struct file *wanted_file(__u64 fd)
{
	struct file *file = gadget_fd_file(bpf_get_current_task_btf(), fd);
	if (!file || !gadget_file_is_regular(file) || !fs_matches(file))
		return NULL;
	return file;
}

static __always_inline int remember(__u32 op, __u64 file, __u64 pos, __u32 positional)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fs_start s = { .ts = bpf_ktime_get_ns(), .file = file, .pos = pos, .op = op, .positional = positional };
	bpf_map_update_elem(&start, &tid, &s, BPF_ANY);
	return 0;
}

static __always_inline int enter_fd(__u32 op, __u64 fd, __u64 pos, __u32 positional)
{
	if (gadget_skip_current())
		return 0;
	struct file *file = wanted_file(fd);
	if (!file)
		return 0;
	if (!positional)
		pos = BPF_CORE_READ(file, f_pos);
	return remember(op, (__u64)file, pos, positional);
}

static __always_inline int leave(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fs_start *s = bpf_map_lookup_elem(&start, &tid);
	if (!s)
		return 0;
	struct fs_start st = *s;
	bpf_map_delete_elem(&start, &tid);

	__u64 latency = bpf_ktime_get_ns() - st.ts;
	if (latency < min_ns)
		return 0;
	long ret = ctx->ret;
	struct file *file;
	if (st.op == FSSLOWER_OPEN) {
		/* the fd exists only now; a failed open has no file to judge */
		if (ret < 0)
			return 0;
		file = wanted_file(ret);
		if (!file)
			return 0;
	} else {
		file = (struct file *)st.file;
	}

	struct fsslower_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return 0;
	gadget_fill_task(e, (struct task_struct *)bpf_get_current_task());
	e->latency_ns = latency;
	e->ret = ret;
	e->op[0] = st.op;
	e->op[1] = e->op[2] = e->op[3] = 0;
	e->__pad = 0;
	e->bytes = 0;
	e->offset = 0;
	if (st.op == FSSLOWER_READ || st.op == FSSLOWER_WRITE) {
		e->bytes = ret > 0 ? ret : 0;
		/* read/write: where it happened is f_pos minus what it moved
		 * (an O_APPEND write starts at the end, not at the entry f_pos) */
		e->offset = st.positional || ret <= 0 ? st.pos : BPF_CORE_READ(file, f_pos) - ret;
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	gadget_file_fs_name(file, e->fs, sizeof(e->fs));
	if (st.op == FSSLOWER_OPEN) {
		if (bpf_probe_read_user_str(e->file, sizeof(e->file), (void *)st.file) < 0)
			e->file[0] = 0;
	} else {
		gadget_file_name(file, e->file, sizeof(e->file));
	}
	gadget_submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx) { return enter_fd(FSSLOWER_READ, ctx->args[0], 0, 0); }

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx) { return enter_fd(FSSLOWER_WRITE, ctx->args[0], 0, 0); }

SEC("tracepoint/syscalls/sys_enter_pread64")
int enter_pread64(struct trace_event_raw_sys_enter *ctx) { return enter_fd(FSSLOWER_READ, ctx->args[0], ctx->args[3], 1); }

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int enter_pwrite64(struct trace_event_raw_sys_enter *ctx) { return enter_fd(FSSLOWER_WRITE, ctx->args[0], ctx->args[3], 1); }

SEC("tracepoint/syscalls/sys_enter_fsync")
int enter_fsync(struct trace_event_raw_sys_enter *ctx) { return enter_fd(FSSLOWER_FSYNC, ctx->args[0], 0, 1); }

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int enter_fdatasync(struct trace_event_raw_sys_enter *ctx) { return enter_fd(FSSLOWER_FSYNC, ctx->args[0], 0, 1); }

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	if (gadget_skip_current())
		return 0;
	return remember(FSSLOWER_OPEN, ctx->args[1], 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_pread64")
int exit_pread64(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int exit_pwrite64(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_fsync")
int exit_fsync(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_fdatasync")
int exit_fdatasync(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx) { return leave(ctx); }

char LICENSE[] SEC("license") = "GPL";
