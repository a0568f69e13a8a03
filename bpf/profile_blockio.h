#ifndef PROFILE_BLOCKIO_H
#define PROFILE_BLOCKIO_H

/* log2 buckets of latency in µs: bucket 0 holds 0-1 µs, bucket b holds
 * [2^b, 2^(b+1)) µs; the last one everything longer. */
#define BLOCKIO_SLOTS 27

/* The histogram key: one bucket of one device and operation. */
struct hist_key {
	__u32 dev;   /* the disk's dev_t as the kernel encodes it: major << 20 | minor */
	__u32 op;    /* REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard, ... */
	__u32 slot;
	__u32 __pad;
};

#endif
