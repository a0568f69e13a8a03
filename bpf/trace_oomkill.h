#ifndef TRACE_OOMKILL_H
#define TRACE_OOMKILL_H

/* One OOM kill: the task the OOM killer ran in (current, the one whose
 * allocation failed) and the victim it chose, with the victim's memory in
 * kB as the kernel log line reports it. */
struct oomkill_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns */
	__u64 cgroup_id; /* the victim's cgroup v2 id */
	__u64 mntns_id; /* the victim's mount namespace */
	__u64 total_vm; /* kB */
	__u64 anon_rss; /* kB */
	__u64 file_rss; /* kB */
	__u64 shmem_rss; /* kB */
	__u32 kpid; /* the triggering task's process id */
	__u32 ktid;
	__u32 tpid; /* the victim's process id */
	__u32 ttid; /* the victim's thread the kernel picked (the one holding the mm) */
	__u32 uid; /* the victim's uid */
	__s16 oom_score_adj; /* the victim's */
	__u16 __pad;
	char kcomm[16];
	char tcomm[16];
};

#endif
