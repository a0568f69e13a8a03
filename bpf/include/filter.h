/* The filters user space sets as read-only constants before load (BCC
 * libbpf-tools style): on the current task (gadget_skip_current, for hooks
 * that run in the acting task) or on a task passed in (gadget_skip_task, for
 * iterators and hooks whose subject is another task, such as a signal's
 * target or an OOM victim). A zero/empty value means "no filter"; uid/gid
 * use (u32)-1 for that as 0 is root. The TS side names these constants once
 * (src/steps, the kernel filter table). */
#ifndef GADGET_FILTER_H
#define GADGET_FILTER_H

#include "gadget.h"

const volatile __u32 targ_tgid = 0;
const volatile __u32 targ_tid = 0;
const volatile __u32 targ_uid = (__u32)-1;
const volatile __u32 targ_gid = (__u32)-1;
const volatile char targ_comm[TASK_COMM_LEN] = {};
/* The workload's cgroup v2 id and its depth: events count when the task's
 * ancestor at that depth is that cgroup, so nested cgroups still match. */
const volatile __u64 targ_cgroup_id = 0;
const volatile __u32 targ_cgroup_level = 0;
const volatile __u64 targ_mntns_id = 0;
/* gadget-run's own process: a node-wide run does not report the tracer's own
 * opens, reads of /proc and so on (src/steps/prepare.ts sets it). */
const volatile __u32 targ_exclude_tgid = 0;
/* The liveness canary's process (bpf/canary/canary.c) while it runs: the
 * filters on the task let it through (the recipe's filters must not hide the
 * marker; user space recognises and drops its events), the scope does not
 * (proving the scope is its point). Its own section, so user space writes it
 * without touching .bss counters; 0 once the canary is gone. */
volatile __u32 gadget_canary_tgid SEC(".data.canary") = 0;

#include "containers.h"

/* The identity every task event starts with (timestamp, cgroup_id, mntns_id,
 * pid, tid, uid, gid) of the current task, filled the same way in every
 * gadget; a macro because each gadget has its own struct. */
#define gadget_fill_task(e, task)                                       \
	do {                                                            \
		__u64 __pid_tgid = bpf_get_current_pid_tgid();          \
		__u64 __uid_gid = bpf_get_current_uid_gid();            \
		(e)->timestamp = bpf_ktime_get_boot_ns();               \
		(e)->cgroup_id = bpf_get_current_cgroup_id();           \
		(e)->mntns_id = gadget_task_mntns(task);                \
		(e)->pid = __pid_tgid >> 32;                            \
		(e)->tid = (__u32)__pid_tgid;                           \
		(e)->uid = (__u32)__uid_gid;                            \
		(e)->gid = __uid_gid >> 32;                             \
	} while (0)

static __always_inline bool gadget_comm_matches(const char *comm)
{
	if (!targ_comm[0])
		return true;
#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != targ_comm[i])
			return false;
		if (!comm[i])
			return true;
	}
	return true;
}

/* cgroup v2 id of a task's default-hierarchy cgroup */
static __always_inline __u64 gadget_task_cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/* Whether the task is in the step's scope: the workload's cgroup (or below
 * it) and, when the step is scoped to containers, the cgroups of its
 * container set. No scope: every task. */
static __always_inline bool gadget_task_in_target_cgroup(struct task_struct *task)
{
	if (!targ_cgroup_id && !targ_containers)
		return true;
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	if (targ_cgroup_id) {
		int level = BPF_CORE_READ(cg, level);
		if (level >= (int)targ_cgroup_level &&
		    BPF_CORE_READ(cg, ancestors[targ_cgroup_level & 63], kn, id) == targ_cgroup_id)
			return true;
	}
	return targ_containers && gadget_container_in_set(BPF_CORE_READ(cg, kn, id));
}

/* gadget_task_in_target_cgroup for the current task, with the cheaper helpers */
static __always_inline bool gadget_current_in_scope(void)
{
	if (!targ_cgroup_id && !targ_containers)
		return true;
	if (targ_cgroup_id &&
	    bpf_get_current_ancestor_cgroup_id(targ_cgroup_level) == targ_cgroup_id)
		return true;
	return targ_containers && gadget_container_in_set(bpf_get_current_cgroup_id());
}

/* the deepest a task's cgroup may be below the workload's for the walk below */
#define GADGET_CGROUP_WALK_MAX 16

/* Whether the current task `t` (from bpf_get_current_task_btf) is in the
 * workload's cgroup or below it, with loads through the task's BTF only, for
 * hooks on every syscall of the node (traceloop, advise/seccomp-profile):
 * the cgroup's css walked up its parents to the workload's level, then one
 * id compare. It takes the place of bpf_get_current_ancestor_cgroup_id, a
 * helper call that measured as much as the rest of traceloop's cost for a
 * task out of scope (bench/traceloop.ts); a direct ancestors[level] read
 * would be shorter still, but the verifier refuses the flexible array
 * ("struct cgroup doesn't have field at offset"). css->parent rather than
 * kernfs_node's parent, which 6.15 renamed __parent: the two spellings
 * behind bpf_core_field_exists in this loop were merged by clang into one
 * load whose relocation fails where __parent does not exist (the verifier
 * refused the program on 6.12). */
static __always_inline bool gadget_btf_task_in_workload(struct task_struct *t)
{
	struct cgroup *cg = t->cgroups->dfl_cgrp;
	int up = cg->level - (int)targ_cgroup_level;
	if (up < 0)
		return false;
	if (up > GADGET_CGROUP_WALK_MAX)
		return bpf_get_current_ancestor_cgroup_id(targ_cgroup_level) == targ_cgroup_id;
	struct cgroup_subsys_state *css = &cg->self;
	for (int i = 0; i < GADGET_CGROUP_WALK_MAX && i < up; i++)
		css = css->parent;
	return css && css->cgroup->kn->id == targ_cgroup_id;
}

/* true when the current task is filtered out by the filters on the task
 * itself (all but the cgroup/container scope): for a hook that has made the
 * scope decision already, or cached it per cgroup (traceloop) */
static __always_inline bool gadget_skip_current_task(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (gadget_canary_tgid && (pid_tgid >> 32) == gadget_canary_tgid)
		return false;
	if (targ_tgid && (pid_tgid >> 32) != targ_tgid)
		return true;
	if (targ_exclude_tgid && (pid_tgid >> 32) == targ_exclude_tgid)
		return true;
	if (targ_tid && (__u32)pid_tgid != targ_tid)
		return true;
	if (targ_uid != (__u32)-1 || targ_gid != (__u32)-1) {
		__u64 uid_gid = bpf_get_current_uid_gid();
		if (targ_uid != (__u32)-1 && (__u32)uid_gid != targ_uid)
			return true;
		if (targ_gid != (__u32)-1 && (uid_gid >> 32) != targ_gid)
			return true;
	}
	if (targ_mntns_id &&
	    gadget_task_mntns((struct task_struct *)bpf_get_current_task()) != targ_mntns_id)
		return true;
	if (targ_comm[0]) {
		char comm[TASK_COMM_LEN];
		bpf_get_current_comm(comm, sizeof(comm));
		if (!gadget_comm_matches(comm))
			return true;
	}
	return false;
}

/* true when the current task is filtered out */
static __always_inline bool gadget_skip_current(void)
{
	return !gadget_current_in_scope() || gadget_skip_current_task();
}

/* true when `task` (not necessarily the current one) is filtered out */
static __always_inline bool gadget_skip_task(struct task_struct *task)
{
	if (gadget_canary_tgid && BPF_CORE_READ(task, tgid) == gadget_canary_tgid)
		return !gadget_task_in_target_cgroup(task);
	if (targ_tgid && BPF_CORE_READ(task, tgid) != targ_tgid)
		return true;
	if (targ_exclude_tgid && BPF_CORE_READ(task, tgid) == targ_exclude_tgid)
		return true;
	if (targ_tid && BPF_CORE_READ(task, pid) != targ_tid)
		return true;
	if (targ_uid != (__u32)-1 && BPF_CORE_READ(task, cred, uid.val) != targ_uid)
		return true;
	if (targ_gid != (__u32)-1 && BPF_CORE_READ(task, cred, gid.val) != targ_gid)
		return true;
	if (!gadget_task_in_target_cgroup(task))
		return true;
	if (targ_mntns_id && gadget_task_mntns(task) != targ_mntns_id)
		return true;
	if (targ_comm[0]) {
		char comm[TASK_COMM_LEN];
		BPF_CORE_READ_STR_INTO(&comm, task, comm);
		if (!gadget_comm_matches(comm))
			return true;
	}
	return false;
}

#endif
