/* Block requests seen from BTF-typed block tracepoints (profile/block-io,
 * top/block-io): the disk a request goes to and its operation. */
#ifndef GADGET_BLOCK_H
#define GADGET_BLOCK_H

#include "gadget.h"

/* REQ_OP_* is the low byte of cmd_flags: 0 read, 1 write, 2 flush, 3 discard, ... */
#define GADGET_REQ_OP_MASK 0xff

/* The disk's dev_t (major << 20 | first minor, as the kernel encodes it), 0 without a disk. */
static __always_inline __u32 gadget_rq_disk_dev(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
}

#endif
