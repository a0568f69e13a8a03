#ifndef TRACE_TCPCONNECT_H
#define TRACE_TCPCONNECT_H

/* One TCP connect, emitted when it completes or fails. */
struct tcpconnect_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns */
	__u64 cgroup_id;
	__u64 mntns_id;
	__u64 latency; /* ns from connect() entry to ESTABLISHED (or to the failure) */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__s32 ret; /* 0, or -errno */
	__u32 __pad0;
	__u16 sport; /* host byte order, local end */
	__u16 dport;
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 ipversion; /* 4 or 6 */
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

#endif
