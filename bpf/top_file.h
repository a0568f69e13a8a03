/* top/file: reads and writes per (process, thread, file), aggregated in the kernel. */
#ifndef TOP_FILE_H
#define TOP_FILE_H

#define TOP_FILE_NAME_LEN 256

/* enum file_type: R regular, S socket, O other */
#define TOP_FILE_REGULAR 0
#define TOP_FILE_SOCKET 1
#define TOP_FILE_OTHER 2

struct file_key {
	__u64 mntns_id;
	__u64 cgroup_id;
	__u64 inode;
	__u32 dev; /* the kernel's dev_t: major << 20 | minor */
	__u32 pid;
	__u32 tid;
	__u32 type;
};

struct file_stats {
	__u64 reads;
	__u64 rbytes;
	__u64 writes;
	__u64 wbytes;
	char comm[16];
	char file[TOP_FILE_NAME_LEN];
};

#endif
