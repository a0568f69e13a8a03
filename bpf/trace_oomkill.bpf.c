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

/* The mm's counters as get_mm_counter() reads them, in pages. Linux 6.2
 * made them percpu_counters (struct percpu_counter rss_stat[NR_MM_COUNTERS]:
 * the shared count, what percpu_counter_read_positive() and the kernel log
 * show); before, one struct mm_rss_stat of atomic_long_t count[] (what
 * Debian's 6.1 has, its tracepoint backported). A macro so the index stays a
 * constant in the CO-RE relocation (MM_* have had these values since Linux
 * 2.6.34). */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

#define mm_counter_pages(mm, member)                                                    \
	(bpf_core_field_exists(((struct mm_struct___old *)(mm))->rss_stat.count)        \
		 ? BPF_CORE_READ((struct mm_struct___old *)(mm), rss_stat.count[member].counter) \
		 : BPF_CORE_READ(mm, rss_stat[member].count))

#define mm_counter_kb(mm, member) pages_to_kb(mm_counter_pages(mm, member))

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
	/* Loaded, not probe-read: where the tracepoint still passes a pid (before
	 * Linux 6.9 and its stable backports) the verifier refuses to dereference
	 * it, so the program does not load rather than report garbage. */
	e->tpid = victim->tgid;
	e->ttid = victim->pid;
	e->uid = uid;
	e->oom_score_adj = BPF_CORE_READ(victim, signal, oom_score_adj);
	e->__pad = 0;
	bpf_get_current_comm(e->kcomm, sizeof(e->kcomm));
	BPF_CORE_READ_STR_INTO(&e->tcomm, victim, comm);
	gadget_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
