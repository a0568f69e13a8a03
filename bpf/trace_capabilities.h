#ifndef TRACE_CAPABILITIES_H
#define TRACE_CAPABILITIES_H

/* One capability check (cap_capable), emitted as it is decided. */
struct cap_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns */
	__u64 cgroup_id;
	__u64 mntns_id;
	__u64 target_userns; /* inode of the user namespace the check is against */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__s32 cap;
	__s32 ret;     /* 0 allowed, -EPERM denied */
	__s32 syscall; /* the syscall the task is in, -1 when none (a kernel thread) */
	__u32 __pad;
	char comm[16];
};

#endif
