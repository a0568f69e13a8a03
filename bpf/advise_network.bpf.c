// SPDX-License-Identifier: GPL-2.0
/* advise/network-policy: trace/tcp's programs as they are (the TCP connects
 * and accepts, same events, same owner tracking), plus the UDP destinations
 * the watched tasks send datagrams to, so DNS over UDP (and any other UDP
 * egress) reaches the policy.
 *
 * Why the send syscalls' tracepoints (sys_enter_sendto/sendmsg/sendmmsg):
 * - they run in the sending task, so the step's kernel filters (workload
 *   cgroup, containers, pid, mntns) apply as in every other hook, and
 *   attaching touches no process outside the trace;
 * - cgroup/sendmsg4/6 + connect4/6 programs would see the same but must be
 *   attached to every watched cgroup (the root cgroup would put a program
 *   in the send path of every process of the machine), re-attached when
 *   containers come and go, and they see a connected socket's sends not at all;
 * - connect() is not a send: glibc's getaddrinfo connects UDP sockets to
 *   every answer only to pick a source address (RFC 3484 sorting), so
 *   counting connects would allow peers never talked to; a connected
 *   socket's sends are seen, with the destination read from the sock;
 * - trace/dns's packet machinery sees DNS only, and per packet.
 * The destination is the syscall's sockaddr (user memory, read at entry) or,
 * for a connected socket (no address given), the sock's peer (BTF).
 * Not seen: write()/writev() on a connected UDP socket and io_uring sends;
 * sendmmsg reports its first message's destination. */
#include "trace_tcp.bpf.c"
#include "advise_network.h"

struct udp_seen_key {
	__u64 cgroup_id;
	__u32 pid;
	__u16 family;
	__u16 dport;
	__u8 daddr[16];
};

/* One event per (cgroup, process, destination): a resolver sends every
 * query to the same server, and a policy needs each peer once. LRU: a
 * process talking to very many peers re-reports the oldest, never fails. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct udp_seen_key);
	__type(value, __u8);
} udp_seen SEC(".maps");

/* the start of sockaddr_in and sockaddr_in6: the address follows at 4 (v4)
 * or 8 (v6, after flowinfo); read apart so a 16-byte sockaddr_in is never
 * read past its end */
struct udp_sockaddr_head {
	__u16 family;
	__u16 port; /* network order */
};

static __always_inline void udp_sent(int fd, const void *uaddr)
{
	if (gadget_skip_current())
		return;
	struct sock *sk = gadget_sock_of_fd(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
		return;
	struct gadget_endpoints ep;
	/* the local end (0 before the first send binds it) and, if connected, the peer */
	gadget_sock_endpoints(sk, &ep);
	/* IPPROTO_UDP is 17 in other families' protocol numbering too */
	if (ep.family != GADGET_AF_INET && ep.family != GADGET_AF_INET6)
		return;
	if (uaddr) {
		struct udp_sockaddr_head sa = {};
		if (bpf_probe_read_user(&sa, sizeof(sa), uaddr))
			return;
		__builtin_memset(ep.daddr, 0, 16);
		if (sa.family == GADGET_AF_INET) {
			if (bpf_probe_read_user(ep.daddr, 4, uaddr + 4))
				return;
		} else if (sa.family == GADGET_AF_INET6) {
			if (bpf_probe_read_user(ep.daddr, 16, uaddr + 8))
				return;
		} else {
			return; /* AF_UNSPEC, AF_UNIX...: no IP peer */
		}
		/* a v6 socket may send to an AF_INET address: the local address,
		 * stored as v6, is not one of that family */
		if (sa.family != ep.family)
			__builtin_memset(ep.saddr, 0, 16);
		ep.family = sa.family;
		ep.dport = bpf_ntohs(sa.port);
	}
	if (!ep.dport)
		return; /* unconnected and no address: the send fails (EDESTADDRREQ) */

	struct udp_seen_key key = {};
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.family = ep.family;
	key.dport = ep.dport;
	__builtin_memcpy(key.daddr, ep.daddr, 16);
	__u8 one = 1;
	if (bpf_map_update_elem(&udp_seen, &key, &one, BPF_NOEXIST))
		return; /* reported already */

	struct tcp_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return;
	struct tcp_owner o;
	tcp_owner_of_current(&o, 0);
	tcp_fill_owner(e, &o);
	gadget_fill_endpoints(e, &ep);
	e->ret = 0;
	e->op = ADVISE_OP_UDP_SEND;
	e->__pad0 = 0;
	gadget_submit(e);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	/* sendto(fd, buf, len, flags, addr, addrlen); send() is sendto with no address */
	udp_sent((int)ctx->args[0], (const void *)ctx->args[4]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg = {};
	if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)ctx->args[1]))
		return 0;
	udp_sent((int)ctx->args[0], msg.msg_name);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct mmsghdr first = {};
	if (!ctx->args[2] || bpf_probe_read_user(&first, sizeof(first), (const void *)ctx->args[1]))
		return 0;
	udp_sent((int)ctx->args[0], first.msg_hdr.msg_name);
	return 0;
}
