#ifndef SNAPSHOT_PROCESS_H
#define SNAPSHOT_PROCESS_H

/* One task, as written by the iter/task program. */
struct process_entry {
	__u64 cgroup_id;
	__u64 mntns_id;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 __pad;
	char comm[16];
};

#endif
