/* Sockets seen from BPF without kprobes: the socket behind a file
 * descriptor of the current task (through its BTF-typed file table), and a
 * sock's addresses and ports, read with CO-RE so the layout of struct
 * sock_common on the running kernel decides the offsets. */
#ifndef GADGET_SOCKET_H
#define GADGET_SOCKET_H

#include "files.h"
#include <bpf/bpf_endian.h>

#define GADGET_AF_INET 2
#define GADGET_AF_INET6 10

/* The struct sock behind `fd` in the current task, or NULL when the fd is
 * not open or not a socket. */
static __always_inline struct sock *gadget_sock_of_fd(int fd)
{
	struct file *file = gadget_fd_file(bpf_get_current_task_btf(), fd);
	if (!file)
		return NULL;
	/* private_data is a struct socket only for socket inodes */
	if ((BPF_CORE_READ(file, f_inode, i_mode) & GADGET_S_IFMT) != GADGET_S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

/* The endpoints of a sock as an event stores them: addresses in 16 bytes
 * (IPv4 in the first 4, the rest zero), ports in host byte order, family
 * AF_INET or AF_INET6. saddr/sport are the local end. */
struct gadget_endpoints {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
};

/* The local port in host order. Not skc_num: the kernel has cleared it by the
 * time inet_sock_set_state reports the move to TCP_CLOSE (measured on 6.18),
 * while inet_sport still holds the port. */
static __always_inline __u16 gadget_sock_local_port(struct sock *sk)
{
	return bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

static __always_inline void gadget_sock_endpoints(struct sock *sk, struct gadget_endpoints *ep)
{
	__builtin_memset(ep, 0, sizeof(*ep));
	ep->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ep->sport = gadget_sock_local_port(sk);
	ep->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (ep->family == GADGET_AF_INET6) {
		BPF_CORE_READ_INTO(&ep->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&ep->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)ep->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)ep->daddr, sk, __sk_common.skc_daddr);
	}
}

/* Copy endpoints into an event with members saddr, daddr, sport, dport,
 * family and ipversion. */
#define gadget_fill_endpoints(e, ep)                                            \
	do {                                                                    \
		__builtin_memcpy((e)->saddr, (ep)->saddr, 16);                  \
		__builtin_memcpy((e)->daddr, (ep)->daddr, 16);                  \
		(e)->sport = (ep)->sport;                                       \
		(e)->dport = (ep)->dport;                                       \
		(e)->family = (ep)->family;                                     \
		(e)->ipversion = (ep)->family == GADGET_AF_INET6 ? 6 : 4;       \
	} while (0)

#endif
