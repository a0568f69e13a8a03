// SPDX-License-Identifier: GPL-2.0
/* top/file: read, write, pread64, pwrite64, readv and writev. The fd and the
 * direction are remembered at syscall entry (per thread, after the filters);
 * at exit a successful call adds one call and its returned bytes to the
 * entry of (task, file), the file found through the task's file table. */
#include "include/filter.h"
#include "include/entry.h"
#include "include/files.h"
#include "include/top.h"
#include "top_file.h"

GADGET_EVENT(file_key);
GADGET_EVENT(file_stats);

/* include sockets, pipes, ttys and other non-regular files */
const volatile bool targ_all_files = false;

struct rw_args {
	__s32 fd;
	__u32 write;
};

GADGET_ENTRY_MAP(start, struct rw_args);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GADGET_TOP_MAX_ENTRIES);
	__type(key, struct file_key);
	__type(value, struct file_stats);
} stats SEC(".maps");

/* a zeroed value to insert: too large for the stack next to the key */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_stats);
} zero SEC(".maps");

static __always_inline int enter(__s64 fd, __u32 write)
{
	if (gadget_skip_current())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct rw_args args = { .fd = (__s32)fd, .write = write };
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

static __always_inline int leave(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct rw_args *args = bpf_map_lookup_elem(&start, &tid);
	if (!args)
		return 0;
	struct rw_args a = *args;
	bpf_map_delete_elem(&start, &tid);
	if (ctx->ret < 0)
		return 0;

	struct file *file = gadget_fd_file(bpf_get_current_task_btf(), a.fd);
	if (!file)
		return 0;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	__u32 mode = BPF_CORE_READ(inode, i_mode) & GADGET_S_IFMT;
	__u32 type = mode == GADGET_S_IFREG ? TOP_FILE_REGULAR : mode == GADGET_S_IFSOCK ? TOP_FILE_SOCKET : TOP_FILE_OTHER;
	if (type != TOP_FILE_REGULAR && !targ_all_files)
		return 0;

	struct file_key key = {
		.mntns_id = gadget_task_mntns((struct task_struct *)bpf_get_current_task()),
		.cgroup_id = bpf_get_current_cgroup_id(),
		.inode = BPF_CORE_READ(inode, i_ino),
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
		.pid = pid_tgid >> 32,
		.tid = tid,
		.type = type,
	};
	__u32 zero_key = 0;
	struct file_stats *z = bpf_map_lookup_elem(&zero, &zero_key);
	if (!z)
		return 0;
	struct file_stats *s = gadget_top_entry(&stats, &key, z);
	if (!s)
		return 0;
	if (!s->comm[0]) {
		bpf_get_current_comm(s->comm, sizeof(s->comm));
		gadget_file_name(file, s->file, sizeof(s->file));
	}
	if (a.write) {
		__sync_fetch_and_add(&s->writes, 1);
		__sync_fetch_and_add(&s->wbytes, ctx->ret);
	} else {
		__sync_fetch_and_add(&s->reads, 1);
		__sync_fetch_and_add(&s->rbytes, ctx->ret);
	}
	return 0;
}

#define RW_SYSCALL(name, write)                                                     \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int enter_##name(struct trace_event_raw_sys_enter *ctx)                     \
	{                                                                           \
		return enter(ctx->args[0], write);                                  \
	}                                                                           \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                  \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                       \
	{                                                                           \
		return leave(ctx);                                                  \
	}

RW_SYSCALL(read, 0)
RW_SYSCALL(write, 1)
RW_SYSCALL(pread64, 0)
RW_SYSCALL(pwrite64, 1)
RW_SYSCALL(readv, 0)
RW_SYSCALL(writev, 1)

char LICENSE[] SEC("license") = "GPL";
