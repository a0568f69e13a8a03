// SPDX-License-Identifier: GPL-2.0
/* advise/seccomp-profile: which syscalls each cgroup in scope made, as a
 * bitmap per cgroup id, kept in the kernel; user space reads the map once at
 * the end and writes the seccomp profile. Nothing per syscall leaves the
 * kernel. The hot path is one hash lookup and a bit test (the atomic OR only
 * the first time a cgroup makes a syscall, so the cache line stays shared):
 * any raw_syscalls/sys_enter hook runs on every syscall of the node. */
#include "include/filter.h"
#include <bpf/bpf_tracing.h>
#include "advise_seccomp.h"

GADGET_EVENT(syscall_bitmap);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct syscall_bitmap);
} syscalls SEC(".maps");

/* syscalls whose number does not fit the bitmap (x32's, a future table) */
__u64 unrecorded_syscalls = 0;
/* cgroups in scope that found `syscalls` full */
__u64 dropped_cgroups = 0;

static __always_inline void mark(struct syscall_bitmap *b, __u32 nr)
{
	__u64 bit = 1ULL << (nr & 63);
	__u64 *word = &b->bits[(nr / 64) & (SECCOMP_NR_MAX / 64 - 1)];
	if (!(*word & bit))
		__sync_fetch_and_or(word, bit);
}

/* A cgroup's bitmap, created the first time a task in scope needs it. */
static __always_inline struct syscall_bitmap *bitmap_of(__u64 cgid)
{
	struct syscall_bitmap zero = {};
	bpf_map_update_elem(&syscalls, &cgid, &zero, BPF_NOEXIST);
	struct syscall_bitmap *b = bpf_map_lookup_elem(&syscalls, &cgid);
	if (!b)
		__sync_fetch_and_add(&dropped_cgroups, 1);
	return b;
}

/* A workload's recording starts at its first exec, not at the fork of the
 * shell that moved it into its cgroup: the runner's own steps before the
 * exec are not the workload's. (execve itself is allowed by user space.) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(seccomp_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!gadget_skip_current())
		bitmap_of(bpf_get_current_cgroup_id());
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(seccomp_sys_enter, struct pt_regs *regs, long id)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct syscall_bitmap *b = bpf_map_lookup_elem(&syscalls, &cgid);
	if (!b) {
		/* with a workload cgroup, only exec creates bitmaps; containers
		 * and the node are recorded from attach on (they run already) */
		if (targ_cgroup_id || gadget_skip_current())
			return 0;
		b = bitmap_of(cgid);
		if (!b)
			return 0;
	}
	if ((__u64)id < SECCOMP_NR_MAX)
		mark(b, id);
	else
		__sync_fetch_and_add(&unrecorded_syscalls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
