#ifndef TRACE_MOUNT_H
#define TRACE_MOUNT_H

#define MOUNT_FS_MAX 64
#define MOUNT_PATH_MAX 256
#define MOUNT_DATA_MAX 256

/* What the call was (the `operation` field's names, src/gadgets/trace/mount.ts). */
enum mount_op {
	MOUNT_OP_MOUNT = 0,
	MOUNT_OP_UMOUNT = 1,
	MOUNT_OP_FSOPEN = 2,
	MOUNT_OP_FSCONFIG = 3,
	MOUNT_OP_FSMOUNT = 4,
	MOUNT_OP_MOVE_MOUNT = 5,
};

/* One mount-family syscall, emitted at its exit. Which argument lands in
 * which member depends on the operation (see trace_mount.bpf.c). */
struct mount_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns, at exit */
	__u64 cgroup_id;
	__u64 mntns_id;
	__u64 latency; /* ns from syscall entry to exit */
	__u64 flags;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__s32 ret; /* 0 (or an fd), or -errno */
	__u32 op;  /* enum mount_op */
	char comm[16];
	char fs[MOUNT_FS_MAX];
	char source[MOUNT_PATH_MAX];
	char target[MOUNT_PATH_MAX];
	char data[MOUNT_DATA_MAX];
};

#endif
