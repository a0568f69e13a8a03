/* top/block-io: block I/O per (submitting process, disk, read/write), aggregated in the kernel. */
#ifndef TOP_BLOCKIO_H
#define TOP_BLOCKIO_H

struct blockio_key {
	__u64 mntns_id;
	__u64 cgroup_id;
	__u32 pid;
	__u32 dev; /* the disk's dev_t: major << 20 | first minor */
	__u32 op; /* REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard, ... */
	__u32 __pad;
};

struct blockio_stats {
	__u64 bytes;
	__u64 ios;
	__u64 time_us; /* start to completion, summed */
	char comm[16];
};

#endif
