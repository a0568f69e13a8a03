#ifndef TRACE_FSSLOWER_H
#define TRACE_FSSLOWER_H

#define FSSLOWER_FILE_MAX 256
#define FSSLOWER_FS_MAX 16

/* The operations, lettered as IG's fsslower does (its `T` column). */
#define FSSLOWER_READ 'R'
#define FSSLOWER_WRITE 'W'
#define FSSLOWER_OPEN 'O'
#define FSSLOWER_FSYNC 'F'

/* One read, write, open or fsync of a regular file that took at least
 * min_ms, emitted at syscall exit. */
struct fsslower_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns, at exit */
	__u64 cgroup_id;
	__u64 mntns_id;
	__u64 latency_ns;
	__u64 offset; /* file position of a read or write; 0 otherwise */
	__u64 bytes; /* bytes read or written; 0 otherwise */
	__s64 ret; /* the syscall's return: bytes, fd, 0, or -errno */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	char op[4]; /* one of the letters above, NUL-terminated */
	__u32 __pad;
	char comm[16];
	char fs[FSSLOWER_FS_MAX];
	char file[FSSLOWER_FILE_MAX]; /* the dentry's name; for open, the path as passed */
};

#endif
