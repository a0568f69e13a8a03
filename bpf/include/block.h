/* Block requests seen from BTF-typed block tracepoints (profile/block-io,
 * top/block-io): the disk a request goes to and its operation. */
#ifndef GADGET_BLOCK_H
#define GADGET_BLOCK_H

#include "gadget.h"

/* REQ_OP_* is the low byte of cmd_flags: 0 read, 1 write, 2 flush, 3 discard, ... */
#define GADGET_REQ_OP_MASK 0xff

/* A disk's dev_t as the kernel encodes it: major << 20 | first minor. */
static __always_inline __u32 gadget_disk_dev(struct gendisk *disk)
{
	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
}

/* The disk's dev_t of a request, 0 without a disk. */
static __always_inline __u32 gadget_rq_disk_dev(struct request *rq)
{
	return gadget_disk_dev(BPF_CORE_READ(rq, q, disk));
}

/* The disk's dev_t of a bio (its partition's disk), 0 without one. */
static __always_inline __u32 gadget_bio_disk_dev(struct bio *bio)
{
	return gadget_disk_dev(BPF_CORE_READ(bio, bi_bdev, bd_disk));
}

#endif
