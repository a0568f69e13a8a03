#ifndef TRACELOOP_H
#define TRACELOOP_H

/* syscall numbers the per-syscall tables cover (x86-64 has < 470) */
#define TL_NR_MAX 512
/* the longest path kept per syscall, NUL included (a flight recorder keeps
 * the tail of what happened, not whole paths: longer ones are cut) */
#define TL_PATH_LEN 256

/* One recorded syscall: a slot of a cgroup's circular buffer. */
struct tl_slot {
	__u64 seq;       /* the cgroup's sequence number + 1; 0: never written */
	__u64 timestamp; /* CLOCK_BOOTTIME ns at sys_enter */
	__u64 cgroup_id;
	__u64 mntns_id;
	__u64 args[6];
	__s64 ret;       /* valid when done */
	__u64 path_ptr;  /* the path argument, kept to read it again at exit if enter could not */
	__u32 pid;
	__u32 tid;
	__u32 nr;
	__u32 done;      /* 1: sys_exit filled ret; 0: still in the syscall (or exited the process) */
	char comm[16];
	char path[TL_PATH_LEN];
};

/* A cgroup's buffer (bufs, keyed by its id): its next sequence number and
 * its slice of `slots`. */
struct tl_buf {
	__u64 seq;
	__u32 index;
	__u32 __pad;
};

/* The slot a thread in a syscall will fill at exit, and the seq it must still hold. */
struct tl_pending {
	__u64 seq;
	__u32 slot;
	__u32 __pad;
};

#endif
