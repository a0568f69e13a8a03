/* The event ring buffer of stream gadgets, with wakeup-batched submit and
 * the lost-event counter (docs/architecture.md,
 * "Ring buffer at C speed from JS"). */
#ifndef GADGET_RINGBUF_H
#define GADGET_RINGBUF_H

#include "gadget.h"

/* Unread bytes above which a submit wakes the consumer; below it the
 * consumer's timer drain picks events up. */
const volatile __u64 wakeup_bytes = 256 * 1024;

/* Events the ring buffer had no room for. */
__u64 gadget_lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* user space may resize before load */
} events SEC(".maps");

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
