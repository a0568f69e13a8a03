#ifndef TRACE_OPEN_H
#define TRACE_OPEN_H

#define OPEN_PATH_MAX 256

/* One open/openat/openat2, emitted at syscall exit. */
struct open_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns */
	__u64 cgroup_id;
	__u64 mntns_id;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__s32 ret; /* fd, or -errno */
	__u32 flags;
	__u32 mode;
	__u32 __pad;
	char comm[16];
	char path[OPEN_PATH_MAX];
};

#endif
