// SPDX-License-Identifier: GPL-2.0
/* profile/block-io: a log2 histogram of block request latency (issue to
 * completion) per disk and operation, kept in the kernel; user space reads
 * it once, at the end. Both hooks are tp_btf so the request pointer is
 * typed: it keys the issue time. No task filter: requests are often issued
 * from a kworker or completed in an interrupt, where the current task says
 * nothing about who asked (top/block-io attributes at block_io_start). */
/* filter.h only for the shared constants: requests carry no task to filter */
#include "include/filter.h"
#include <bpf/bpf_tracing.h>
#include "include/block.h"
#include "profile_blockio.h"

GADGET_EVENT(hist_key);

/* Only this disk (dev_t as in hist_key; 0 = every disk). */
const volatile __u32 targ_dev = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hist_key);
	__type(value, __u64);
} hist SEC(".maps");

/* Completions whose bucket did not fit in `hist`. */
__u64 dropped_requests = 0;

/* floor(log2(v)) by halving (BCC's log2l), capped at the last bucket */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xFFFFFFFF) << 5; v >>= r;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r < BLOCKIO_SLOTS - 1 ? r : BLOCKIO_SLOTS - 1;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(blockio_issue, struct request *rq)
{
	if (targ_dev && gadget_rq_disk_dev(rq) != targ_dev)
		return 0;
	__u64 key = (__u64)rq;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &key, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(blockio_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	__u64 *ts = bpf_map_lookup_elem(&start, &key);
	if (!ts)
		return 0; /* issued before we attached, or another disk */
	/* a request may complete in parts (nr_bytes < its size): count it
	 * once, at its first completion, as biolatency does */
	__u64 delta_us = (bpf_ktime_get_ns() - *ts) / 1000;
	bpf_map_delete_elem(&start, &key);

	struct hist_key h = {};
	h.dev = gadget_rq_disk_dev(rq);
	h.op = BPF_CORE_READ(rq, cmd_flags) & GADGET_REQ_OP_MASK;
	h.slot = log2_slot(delta_us);
	__u64 *count = bpf_map_lookup_elem(&hist, &h);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(&hist, &h, &one, BPF_NOEXIST)) {
		count = bpf_map_lookup_elem(&hist, &h);
		if (count)
			__sync_fetch_and_add(count, 1);
		else
			__sync_fetch_and_add(&dropped_requests, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
