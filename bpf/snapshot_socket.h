#ifndef SNAPSHOT_SOCKET_H
#define SNAPSHOT_SOCKET_H

/* One TCP or UDP socket of the iterated network namespace, as written by
 * the iter/tcp and iter/udp programs. Addresses: 16 bytes (IPv4 in the first
 * 4); ports in host order; pid/comm of a process holding it open, found by
 * the iter/task_file pass that runs first (0/"" when none was found, e.g. a
 * TIME_WAIT or SYN_RECV entry, which has no file). */
struct socket_entry {
	__u64 inode;
	__u64 netns;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 pid;
	__u32 uid;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 protocol;
	__u8 state;
	__u32 ipversion;
	char comm[16];
};

/* What the owners pass remembers of a socket file. */
struct socket_owner {
	__u32 pid;
	__u32 __pad;
	char comm[16];
};

#endif
