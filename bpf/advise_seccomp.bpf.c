// SPDX-License-Identifier: GPL-2.0
/* advise/seccomp-profile: which syscalls each cgroup in scope made, as a
 * bitmap per cgroup, kept in the kernel; user space reads the `syscalls`
 * hash (cgroup id → bitmap) once at the end and writes the seccomp profile.
 * Nothing per syscall leaves the kernel.
 *
 * Any sys_enter hook runs on every syscall of the node, so the hot path is
 * as short as it gets: the thread's own copy of what it made in task local
 * storage (a pointer from the task, no hashing; Linux 5.11+) and a bit test.
 * Only a syscall the thread makes for the first time (a few dozen per
 * thread) also sets its bit in its cgroup's bitmap in the hash. A hash
 * lookup by cgroup id on every syscall measured 1.17x an empty hook, cgroup
 * local storage (Linux 6.2+, so not on 6.1) 1.09x; bench/seccomp.ts. */
#include "include/filter.h"
#include <bpf/bpf_tracing.h>
#include "advise_seccomp.h"

GADGET_EVENT(syscall_bitmap);
GADGET_EVENT(seccomp_thread);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);	/* params.cgroups */
	__type(key, __u64);		/* cgroup v2 id */
	__type(value, struct syscall_bitmap);
} syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct seccomp_thread);
} seen SEC(".maps");

/* syscalls whose number does not fit the bitmap (x32's, a future table) */
__u64 unrecorded_syscalls = 0;
/* times a cgroup in scope could not start recording: `syscalls` was full
 * (at its exec for a workload's cgroup, at each syscall elsewhere) */
__u64 dropped_cgroups = 0;

/* Start recording a cgroup: its entry in `syscalls` (NULL when the map is full: counted). */
static __always_inline struct syscall_bitmap *record_cgroup(__u64 cgid)
{
	struct syscall_bitmap zero = {};
	bpf_map_update_elem(&syscalls, &cgid, &zero, BPF_NOEXIST);
	struct syscall_bitmap *b = bpf_map_lookup_elem(&syscalls, &cgid);
	if (!b)
		__sync_fetch_and_add(&dropped_cgroups, 1);
	return b;
}

/* The current thread's first syscall in a cgroup that is recorded: its
 * storage, for that cgroup. NULL for a thread out of scope, which comes here
 * on every syscall, so its way out is the short one: a few loads for a
 * workload cgroup, a hash lookup for a container set. */
static __always_inline struct seccomp_thread *start_thread(struct task_struct *t, __u64 cgid)
{
	if (targ_cgroup_id) {
		/* with a workload cgroup, only exec starts a recording (the exec hook) */
		if (!gadget_btf_task_in_workload(t) || !bpf_map_lookup_elem(&syscalls, &cgid))
			return NULL;
	} else {
		/* containers and the node are recorded from attach on */
		if (gadget_skip_current() || !record_cgroup(cgid))
			return NULL;
	}
	struct seccomp_thread *s = bpf_task_storage_get(&seen, t, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (s) {
		/* a thread that moved from another recorded cgroup starts over */
		s->cgroup_id = cgid;
		__builtin_memset(&s->seen, 0, sizeof(s->seen));
	}
	return s;
}

/* A workload's recording starts at its first exec, not at the fork of the
 * shell that moved it into its cgroup: the runner's own steps before the
 * exec are not the workload's. (execve itself is allowed by user space.) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(seccomp_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!gadget_skip_current())
		record_cgroup(bpf_get_current_cgroup_id());
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(seccomp_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 cgid = t->cgroups->dfl_cgrp->kn->id;
	/* a thread with no local storage at all (most of the node, for a
	 * workload) has none of ours: one load, no helper call */
	struct seccomp_thread *s = t->bpf_storage ? bpf_task_storage_get(&seen, t, NULL, 0) : NULL;
	if (!s || s->cgroup_id != cgid) {
		s = start_thread(t, cgid);
		if (!s)
			return 0;
	}
	if ((__u64)id >= SECCOMP_NR_MAX) {
		__sync_fetch_and_add(&unrecorded_syscalls, 1);
		return 0;
	}
	__u64 bit = 1ULL << (id & 63);
	__u32 w = (id / 64) & (SECCOMP_NR_MAX / 64 - 1);
	if (s->seen.bits[w] & bit)
		return 0;
	/* the thread's first such syscall: only it writes its storage */
	s->seen.bits[w] |= bit;
	struct syscall_bitmap *b = bpf_map_lookup_elem(&syscalls, &cgid);
	if (b)
		__sync_fetch_and_or(&b->bits[w], bit);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
