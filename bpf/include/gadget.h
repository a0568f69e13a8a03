/* Shared kernel-side pieces of every gadget: the event ring buffer with
 * wakeup-batched submit, the lost-event counter, and the filters user space
 * sets as read-only constants before load (BCC libbpf-tools style). */
#ifndef GADGET_H
#define GADGET_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16

/* Clang emits BTF only for types reachable from globals and maps; this
 * anchor puts a gadget's event struct in the object's BTF, where user space
 * reads its layout. */
#define GADGET_EVENT(type) const struct type *gadget_event_##type __attribute__((unused))

/* Filters; user space writes them into .rodata before load. A zero/empty
 * value means "no filter", uid/gid use (u32)-1 for that as 0 is root. */
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

/* Unread bytes above which a submit wakes the consumer; below it the
 * consumer's timer drain picks events up (see DESIGN.md, ring buffer). */
const volatile __u64 wakeup_bytes = 256 * 1024;

/* Events the ring buffer had no room for. */
__u64 gadget_lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* user space may resize before load */
} events SEC(".maps");

/* The identity every task event starts with (timestamp, cgroup_id, mntns_id,
 * pid, tid, uid, gid), filled the same way in every gadget; a macro because
 * each gadget has its own struct. */
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

static __always_inline __u64 gadget_task_mntns(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* true when the current task is filtered out */
static __always_inline bool gadget_skip_current(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (targ_tgid && (pid_tgid >> 32) != targ_tgid)
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
	if (targ_cgroup_id &&
	    bpf_get_current_ancestor_cgroup_id(targ_cgroup_level) != targ_cgroup_id)
		return true;
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

/* Force a wakeup only when a record takes the unread data across
 * wakeup_bytes. Forcing one on every record above it queues an irq_work (an
 * interrupt on the traced task's CPU) per submit for as long as the consumer
 * lags, which slows the traced task (bench/README.md). The consumer drains
 * again at once while more than a little is unread, and its wait has a
 * timeout, so the one wakeup per crossing is enough. */
static __always_inline __u64 gadget_wakeup_flags(__u64 unread_before, __u64 record)
{
	return unread_before < wakeup_bytes && unread_before + record >= wakeup_bytes ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* bytes a record of `size` takes in the ring: 8-byte header, rounded up to 8 */
#define GADGET_RECORD_BYTES(size) (((__u64)(size) + 8 + 7) & ~7ULL)

static __always_inline void *gadget_reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		__sync_fetch_and_add(&gadget_lost, 1);
	return e;
}

static __always_inline void gadget_submit_sized(void *e, __u64 size)
{
	/* the unread data already counts this reserved record */
	__u64 unread = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 record = GADGET_RECORD_BYTES(size);
	bpf_ringbuf_submit(e, gadget_wakeup_flags(unread > record ? unread - record : 0, record));
}

#define gadget_submit(e) gadget_submit_sized((e), sizeof(*(e)))

/* For variable-length events built elsewhere (copies once). */
static __always_inline void gadget_output(void *e, __u64 size)
{
	__u64 unread = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (bpf_ringbuf_output(&events, e, size, gadget_wakeup_flags(unread, GADGET_RECORD_BYTES(size))))
		__sync_fetch_and_add(&gadget_lost, 1);
}

#endif
