/* top/tcp: bytes sent and received per (process, TCP connection), aggregated in the kernel. */
#ifndef TOP_TCP_H
#define TOP_TCP_H

struct top_tcp_key {
	__u64 mntns_id;
	__u64 cgroup_id;
	__u32 pid;
	__u16 family; /* AF_INET or AF_INET6 */
	__u8 ipversion; /* 4 or 6 */
	__u8 __pad0;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order, local end */
	__u16 dport;
	__u32 __pad1;
};

struct top_tcp_stats {
	__u64 sent;
	__u64 received;
	char comm[16];
};

#endif
