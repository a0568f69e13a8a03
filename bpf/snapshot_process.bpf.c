// SPDX-License-Identifier: GPL-2.0
/* snapshot/process: one pass over every task with a BPF task iterator.
 * Filters apply to the iterated task, not to the reader. */
#include "include/gadget.h"
#include "snapshot_process.h"

GADGET_EVENT(process_entry);

const volatile __u8 show_threads = 0;

SEC("iter/task")
int snapshot_process(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;

	struct process_entry e = {};
	e.pid = BPF_CORE_READ(task, tgid);
	e.tid = BPF_CORE_READ(task, pid);
	if (!show_threads && e.pid != e.tid)
		return 0;
	if (targ_tgid && e.pid != targ_tgid)
		return 0;
	if (targ_tid && e.tid != targ_tid)
		return 0;

	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.uid = BPF_CORE_READ(task, cred, uid.val);
	e.gid = BPF_CORE_READ(task, cred, gid.val);
	if (targ_uid != (__u32)-1 && e.uid != targ_uid)
		return 0;
	if (targ_gid != (__u32)-1 && e.gid != targ_gid)
		return 0;

	e.cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	if (targ_cgroup_id) {
		/* ancestor of the task's cgroup at the workload's depth */
		struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
		int level = BPF_CORE_READ(cg, level);
		if (level < (int)targ_cgroup_level)
			return 0;
		__u64 anc = BPF_CORE_READ(cg, ancestors[targ_cgroup_level & 63], kn, id);
		if (anc != targ_cgroup_id)
			return 0;
	}
	e.mntns_id = gadget_task_mntns(task);
	if (targ_mntns_id && e.mntns_id != targ_mntns_id)
		return 0;
	BPF_CORE_READ_STR_INTO(&e.comm, task, comm);
	if (!gadget_comm_matches(e.comm))
		return 0;

	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
