// SPDX-License-Identifier: GPL-2.0
/* top/block-io: a request is attributed where it is made, in the task that
 * submitted the bio (block_rq_issue often runs in a kworker or the loop
 * worker: the wrong task); its key, name and start time wait in `start`
 * until the request's first block/block_rq_complete, where its bytes, one
 * I/O and its latency add to the entry. Bytes are the request's at that
 * completion: bios merged into it after it was made count too. Where the
 * request is made, the first hook this kernel has:
 * - block/block_io_start (tp_btf, Linux 6.5+), keyed by the request; it
 *   fires only for requests the disk accounts (queue/iostats 1, the default);
 * - block/block_getrq (tp_btf; every request, accounted or not), which gives
 *   only the bio the request is made from: keyed by that bio, found again
 *   at completion as the request's first bio. A bio merged in front of it
 *   (rare: submitted in descending order) hides the request. */
#include "include/filter.h"
#include "include/block.h"
#include "include/top.h"
#include <bpf/bpf_tracing.h>
#include "top_blockio.h"

GADGET_EVENT(blockio_key);
GADGET_EVENT(blockio_stats);

struct started {
	struct blockio_key key;
	__u64 ts;
	char comm[16];
};

/* Requests made and not yet completed, by request (block_io_start) or by
 * their first bio (block_getrq). LRU: an entry whose completion is never
 * found (made before the gadget attached its completion hook, a front
 * merge) makes room in time. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, struct started);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GADGET_TOP_MAX_ENTRIES);
	__type(key, struct blockio_key);
	__type(value, struct blockio_stats);
} stats SEC(".maps");

/* In the submitting task: who made the request, for which disk and operation. */
static __always_inline int made(__u64 id, __u32 dev, __u32 op)
{
	if (gadget_skip_current())
		return 0;
	struct started st = {};
	st.key.mntns_id = gadget_task_mntns((struct task_struct *)bpf_get_current_task());
	st.key.cgroup_id = bpf_get_current_cgroup_id();
	st.key.pid = bpf_get_current_pid_tgid() >> 32;
	st.key.dev = dev;
	st.key.op = op;
	st.ts = bpf_ktime_get_ns();
	bpf_get_current_comm(st.comm, sizeof(st.comm));
	bpf_map_update_elem(&start, &id, &st, BPF_ANY);
	return 0;
}

/* A request's first completion (it may complete in parts): the whole request counts once. */
static __always_inline int completed(__u64 id, struct request *rq)
{
	struct started *st = bpf_map_lookup_elem(&start, &id);
	if (!st)
		return 0; /* made before we attached, or filtered out */
	__u64 delta_us = (bpf_ktime_get_ns() - st->ts) / 1000;
	struct blockio_stats zero = {};
	struct blockio_stats *s = gadget_top_entry(&stats, &st->key, &zero);
	if (s) {
		if (!s->comm[0])
			__builtin_memcpy(s->comm, st->comm, sizeof(s->comm));
		/* the bytes not completed yet: all of them, the first time */
		__sync_fetch_and_add(&s->bytes, BPF_CORE_READ(rq, __data_len));
		__sync_fetch_and_add(&s->ios, 1);
		__sync_fetch_and_add(&s->time_us, delta_us);
	}
	bpf_map_delete_elem(&start, &id);
	return 0;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(top_blockio_start, struct request *rq)
{
	return made((__u64)rq, gadget_rq_disk_dev(rq), BPF_CORE_READ(rq, cmd_flags) & GADGET_REQ_OP_MASK);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(top_blockio_complete, struct request *rq)
{
	return completed((__u64)rq, rq);
}

/* block_getrq fires just before the bio becomes the request's first. */
SEC("tp_btf/block_getrq")
int BPF_PROG(top_blockio_getrq, struct bio *bio)
{
	return made((__u64)bio, gadget_bio_disk_dev(bio), BPF_CORE_READ(bio, bi_opf) & GADGET_REQ_OP_MASK);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(top_blockio_complete_bio, struct request *rq)
{
	return completed((__u64)BPF_CORE_READ(rq, bio), rq);
}

char LICENSE[] SEC("license") = "GPL";
