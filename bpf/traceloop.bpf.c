// SPDX-License-Identifier: GPL-2.0
/* traceloop: a flight recorder of syscalls. Every syscall of a watched task
 * is written at sys_enter into its cgroup's circular buffer (a slice of one
 * big array map, slot = seq % targ_slots), and its return value is added at
 * sys_exit into the slot remembered per thread. Nothing reaches user space
 * while the step runs: it reads the slots once, at stop. The buffer belongs
 * to the cgroup, not the process, so the last syscalls of a process that
 * crashed are still there when the step stops. Ring buffers never overwrite,
 * which is why this is an array. */
#include "include/filter.h"
#include <bpf/bpf_tracing.h>
#include "traceloop.h"


GADGET_EVENT(tl_slot);
GADGET_EVENT(tl_buf);
GADGET_EVENT(tl_pending);

/* slots per cgroup, and how many cgroups get a buffer (user space sizes the maps to match) */
const volatile __u32 targ_slots = 1024;
const volatile __u32 targ_max_cgroups = 16;
/* 1: only syscalls whose targ_syscall_on[nr] is set */
const volatile __u32 targ_syscall_filter = 0;
const volatile __u8 targ_syscall_on[TL_NR_MAX] = {};
/* per syscall number: 1 + the index of its path argument, 0 when it takes none
 * (user space fills it from its table of path-taking syscalls) */
const volatile __u8 targ_path_arg[TL_NR_MAX] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);	/* targ_max_cgroups */
	__type(key, __u64);		/* cgroup v2 id */
	__type(value, struct tl_buf);
} bufs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16 * 1024);	/* targ_max_cgroups * targ_slots */
	__type(key, __u32);
	__type(value, struct tl_slot);
} slots SEC(".maps");

/* per thread, in the task itself: sys_exit runs for every syscall on the
 * node, and a task-storage lookup is a pointer away where a hash lookup
 * would hash and search */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tl_pending);
} pending SEC(".maps");

__u32 next_buf = 0;
/* syscalls not recorded: their cgroup came after targ_max_cgroups others */
__u64 dropped_syscalls = 0;

/* A cgroup in scope seen for the first time: its entry in bufs, with an
 * index in `slots` (NULL: targ_max_cgroups others came first). */
static __always_inline struct tl_buf *new_buf(__u64 cgroup_id)
{
	if (next_buf >= targ_max_cgroups)
		return NULL;
	__u32 index = __sync_fetch_and_add(&next_buf, 1);
	if (index >= targ_max_cgroups)
		return NULL;
	struct tl_buf fresh = { .index = index };
	/* two CPUs may race on a new cgroup: the loser's index stays unused */
	bpf_map_update_elem(&bufs, &cgroup_id, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&bufs, &cgroup_id);
}

/* gadget_current_in_scope (filter.h) with the workload checked through the
 * task's BTF and the container set looked up by the cgroup id read from it */
static __always_inline bool in_scope(struct task_struct *t)
{
	if (!targ_cgroup_id && !targ_containers)
		return true;
	if (targ_cgroup_id && gadget_btf_task_in_workload(t))
		return true;
	return targ_containers && gadget_container_in_set(t->cgroups->dfl_cgrp->kn->id);
}

/* tp_btf rather than the raw_syscalls tracepoint: no copy of the arguments
 * into a perf trace record on every syscall of the node, and the registers
 * are typed, read directly.
 *
 * Both hooks run for every syscall of the node while the step runs, so what
 * a task out of scope pays comes first and is as short as it gets: here the
 * scope decision before anything else (a few loads and one compare for a
 * workload cgroup, no helper; a hash lookup for a container set), and at
 * exit one load (bench/traceloop.ts
 * measures both against empty hooks: 1.05x them, from 1.20x with a helper
 * for the scope and a task-storage lookup at every exit). A watched task's
 * cgroup buffer is found in the `bufs` hash by the cgroup id read from the
 * task (cgroup local storage would be a pointer away, but it is 6.2+), and
 * its identity is read through its BTF, not with bpf_probe_read_kernel or
 * bpf_get_current_comm. */
SEC("tp_btf/sys_enter")
int BPF_PROG(traceloop_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	if (!in_scope(t))
		return 0;
	if (id < 0 || id >= TL_NR_MAX)
		return 0;
	if (targ_syscall_filter && !targ_syscall_on[id])
		return 0;
	if (gadget_skip_current_task())
		return 0;
	__u64 cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	struct tl_buf *b = bpf_map_lookup_elem(&bufs, &cgroup_id);
	if (!b) {
		b = new_buf(cgroup_id);
		if (!b) {
			__sync_fetch_and_add(&dropped_syscalls, 1);
			return 0;
		}
	}
	__u64 seq = __sync_fetch_and_add(&b->seq, 1);
	__u32 slot = b->index * targ_slots + (__u32)(seq % targ_slots);
	struct tl_slot *s = bpf_map_lookup_elem(&slots, &slot);
	if (!s)
		return 0;
	s->timestamp = bpf_ktime_get_boot_ns();
	s->cgroup_id = cgroup_id;
	/* direct loads through the task's BTF (no bpf_probe_read_kernel per step) */
	s->mntns_id = t->nsproxy->mnt_ns->ns.inum;
	s->pid = t->tgid;
	s->tid = t->pid;
	s->nr = id;
	s->done = 0;
	s->ret = 0;
#ifdef __TARGET_ARCH_x86
	/* the x86-64 syscall ABI's registers (libbpf 1.1 has no PT_REGS_PARM6_SYSCALL) */
	__u64 args[6] = { regs->di, regs->si, regs->dx, regs->r10, regs->r8, regs->r9 };
#else
	/* elsewhere five arguments (user space names syscalls by the x86-64 table only) */
	__u64 args[6] = { PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs),
			  PT_REGS_PARM4_CORE_SYSCALL(regs), PT_REGS_PARM5_CORE_SYSCALL(regs), 0 };
#endif
	__builtin_memcpy(s->args, args, sizeof(args));
	__builtin_memcpy(s->comm, t->comm, sizeof(s->comm));
	__u8 pa = targ_path_arg[id];
	s->path_ptr = 0;
	s->path[0] = 0;
	if (pa >= 1 && pa <= 6) {
		/* & 7: a bound the verifier sees (pa <= 6, and args[6..7] would still be inside the slot) */
		s->path_ptr = s->args[(pa - 1) & 7];
		/* a page not yet faulted in fails here (no faults in this context): exit tries again */
		if (bpf_probe_read_user_str(s->path, sizeof(s->path), (void *)s->path_ptr) > 0)
			s->path_ptr = 0;
		else
			s->path[0] = 0;
	}
	s->seq = seq + 1;
	struct tl_pending *p = bpf_task_storage_get(&pending, t, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (p) {
		p->seq = seq + 1;
		p->slot = slot;
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(traceloop_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	/* a thread with no local storage at all (most of the node) never
	 * entered a recorded syscall: one load, no helper call */
	if (!t->bpf_storage)
		return 0;
	struct tl_pending *p = bpf_task_storage_get(&pending, t, NULL, 0);
	if (!p || !p->seq)
		return 0;
	__u32 slot = p->slot;
	struct tl_slot *s = bpf_map_lookup_elem(&slots, &slot);
	/* seq differs: the buffer went round while this thread slept in its syscall */
	if (s && s->seq == p->seq) {
		s->ret = ret;
		s->done = 1;
		if (s->path_ptr && bpf_probe_read_user_str(s->path, sizeof(s->path), (void *)s->path_ptr) <= 0)
			s->path[0] = 0;
	}
	/* cleared, not deleted: the thread's next syscall reuses the storage */
	p->seq = 0;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
