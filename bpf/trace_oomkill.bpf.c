// SPDX-License-Identifier: GPL-2.0
/* trace/oomkill: the OOM killer's victims, from the oom/mark_victim
 * tracepoint as a BTF-typed tracepoint (IG's oomkill uses a kprobe on
 * oom_kill_process, which this kernel lacks). tp_btf hands over the victim's
 * task_struct (Linux 6.9+, the change that also gave the tracepoint its rss
 * fields; before, it passed only a pid), so the filters apply to the victim,
 * and its memory is read from its mm the way the tracepoint's own fields are
 * (get_mm_counter). mark_victim runs in the task whose allocation invoked the
 * OOM killer: that is current. */
#include "include/filter.h"
#include "include/ringbuf.h"
#include "trace_oomkill.h"
#include <bpf/bpf_tracing.h>

GADGET_EVENT(oomkill_event);

/* kB per page, set by user space (the kernel's PAGE_SIZE is a macro, not in BTF). */
const volatile __u64 page_kb = 4;

static __always_inline __u64 pages_to_kb(__s64 pages)
{
	return pages > 0 ? (__u64)pages * page_kb : 0;
}

/* percpu_counter_read_positive(): the shared count, as the kernel log shows
 * it. A macro so the index stays a constant in the CO-RE relocation (MM_*
 * have had these values since Linux 2.6.34). */
#define mm_counter_kb(mm, member) pages_to_kb(BPF_CORE_READ(mm, rss_stat[member].count))

SEC("tp_btf/mark_victim")
int BPF_PROG(mark_victim, struct task_struct *victim, uid_t uid)
{
	if (gadget_skip_task(victim))
		return 0;

	struct oomkill_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct mm_struct *mm = BPF_CORE_READ(victim, mm);

	e->timestamp = bpf_ktime_get_boot_ns();
	e->cgroup_id = gadget_task_cgroup_id(victim);
	e->mntns_id = gadget_task_mntns(victim);
	e->total_vm = BPF_CORE_READ(mm, total_vm) * page_kb;
	e->anon_rss = mm_counter_kb(mm, MM_ANONPAGES);
	e->file_rss = mm_counter_kb(mm, MM_FILEPAGES);
	e->shmem_rss = mm_counter_kb(mm, MM_SHMEMPAGES);
	e->kpid = pid_tgid >> 32;
	e->ktid = (__u32)pid_tgid;
	e->tpid = BPF_CORE_READ(victim, tgid);
	e->ttid = BPF_CORE_READ(victim, pid);
	e->uid = uid;
	e->oom_score_adj = BPF_CORE_READ(victim, signal, oom_score_adj);
	e->__pad = 0;
	bpf_get_current_comm(e->kcomm, sizeof(e->kcomm));
	BPF_CORE_READ_STR_INTO(&e->tcomm, victim, comm);
	gadget_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
