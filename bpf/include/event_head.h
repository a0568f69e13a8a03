/* The members a task's event starts with, declared once. Macros, not a
 * nested struct: every event keeps its flat layout and member names, which
 * user space reads from BTF by name (and user-space C, the layout test,
 * includes the gadget headers, so fixed-width types only). */
#ifndef GADGET_EVENT_HEAD_H
#define GADGET_EVENT_HEAD_H

/* Who and when, as gadget_fill_task (include/filter.h) fills it. */
#define GADGET_EVENT_HEAD                                                      \
	__u64 timestamp; /* CLOCK_BOOTTIME ns */                               \
	__u64 cgroup_id;                                                       \
	__u64 mntns_id;                                                        \
	__u32 pid;                                                             \
	__u32 tid;                                                             \
	__u32 uid;                                                             \
	__u32 gid

/* A process with its parent, as snapshot/process lists it and trace/exec
 * reports it (after its timestamp). */
#define GADGET_PROCESS_HEAD                                                    \
	__u64 cgroup_id;                                                       \
	__u64 mntns_id;                                                        \
	__u32 pid;                                                             \
	__u32 tid;                                                             \
	__u32 ppid;                                                            \
	__u32 uid;                                                             \
	__u32 gid

#endif
