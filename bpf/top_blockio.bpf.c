// SPDX-License-Identifier: GPL-2.0
/* top/block-io: a request is attributed at block/block_io_start, which runs
 * in the task that submitted the bio (block_rq_issue often runs in a kworker
 * or the loop worker: the wrong task); its key, name, size and start time
 * wait in `start`, keyed by the request pointer (tp_btf: typed), until
 * block/block_io_done, where its bytes, one I/O and its latency add to the
 * entry. Both fire only for requests the disk accounts (queue/iostats 1,
 * the default). Bytes are taken at the start: by completion the request's
 * remaining length has gone to 0. */
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
	__u64 bytes;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
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

SEC("tp_btf/block_io_start")
int BPF_PROG(top_blockio_start, struct request *rq)
{
	if (gadget_skip_current())
		return 0;
	struct started st = {};
	st.key.mntns_id = gadget_task_mntns((struct task_struct *)bpf_get_current_task());
	st.key.cgroup_id = bpf_get_current_cgroup_id();
	st.key.pid = bpf_get_current_pid_tgid() >> 32;
	st.key.dev = gadget_rq_disk_dev(rq);
	st.key.op = BPF_CORE_READ(rq, cmd_flags) & GADGET_REQ_OP_MASK;
	st.bytes = BPF_CORE_READ(rq, __data_len);
	st.ts = bpf_ktime_get_ns();
	bpf_get_current_comm(st.comm, sizeof(st.comm));
	__u64 id = (__u64)rq;
	bpf_map_update_elem(&start, &id, &st, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_io_done")
int BPF_PROG(top_blockio_done, struct request *rq)
{
	__u64 id = (__u64)rq;
	struct started *st = bpf_map_lookup_elem(&start, &id);
	if (!st)
		return 0; /* started before we attached, or filtered out */
	__u64 delta_us = (bpf_ktime_get_ns() - st->ts) / 1000;
	struct blockio_stats zero = {};
	struct blockio_stats *s = gadget_top_entry(&stats, &st->key, &zero);
	if (s) {
		if (!s->comm[0])
			__builtin_memcpy(s->comm, st->comm, sizeof(s->comm));
		__sync_fetch_and_add(&s->bytes, st->bytes);
		__sync_fetch_and_add(&s->ios, 1);
		__sync_fetch_and_add(&s->time_us, delta_us);
	}
	bpf_map_delete_elem(&start, &id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
