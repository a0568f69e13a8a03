// SPDX-License-Identifier: GPL-2.0
/* snapshot/process: one pass over every task with a BPF task iterator.
 * Filters apply to the iterated task, not to the reader. */
#include "include/filter.h"
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
	if (gadget_skip_task(task))
		return 0;

	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.uid = BPF_CORE_READ(task, cred, uid.val);
	e.gid = BPF_CORE_READ(task, cred, gid.val);
	e.cgroup_id = gadget_task_cgroup_id(task);
	e.mntns_id = gadget_task_mntns(task);
	BPF_CORE_READ_STR_INTO(&e.comm, task, comm);

	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
