// SPDX-License-Identifier: GPL-2.0
/* advise/network-policy: trace/tcp's programs as they are (the TCP connects
 * and accepts, same events, same owner tracking), plus the UDP destinations
 * the watched tasks send datagrams to, so DNS over UDP (and any other UDP
 * egress) reaches the policy.
 *
 * Why the send syscalls' tracepoints (sendto/sendmsg/sendmmsg, entry and exit):
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
 * for a connected socket (no address given), the sock's peer (BTF); the
 * event is made at exit, when the send has bound the socket (its local port)
 * and its result is known.
 *
 * Receives (recvfrom/recvmsg/recvmmsg on UDP sockets, at exit: the source
 * address the kernel wrote into the caller's sockaddr, or a connected sock's
 * peer) say which side began: a UDP server receives from a peer before it
 * answers it, a client sends first — user space orders the two per socket
 * port and peer (src/gadgets/advise/network-policy/policies.ts), so a server's answers
 * are not egress and its port is ingress.
 *
 * Not seen: write()/writev()/read() on a connected UDP socket and io_uring;
 * sendmmsg and recvmmsg report their first message's peer. */
#include "trace_tcp.bpf.c"
#include "advise_network.h"

#define UDP_DIR_SEND 0
#define UDP_DIR_RECV 1

struct udp_seen_key {
	__u64 cgroup_id;
	__u32 pid;
	__u16 family;
	__u16 lport; /* the socket's local port: a server's answers and a client's queries stay apart */
	__u16 rport;
	__u8 dir; /* UDP_DIR_* */
	__u8 __pad;
	__u8 __pad2[2];
	__u8 raddr[16];
};

/* One event per (cgroup, process, direction, local port, peer): a resolver
 * sends every query to the same server, and a policy needs each peer once.
 * LRU: a process talking to very many peers re-reports the oldest, never
 * fails. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct udp_seen_key);
	__type(value, __u8);
} udp_seen SEC(".maps");

/* a send or receive of a thread, from syscall entry to exit */
struct udp_pending {
	__u64 sk;
	__u64 uaddr; /* the caller's sockaddr: the destination (send) or where the source goes (receive); 0: none */
	struct gadget_endpoints ep; /* send: the destination, read at entry */
	__u8 dir;
};

/* LRU: an entry whose exit never came (the thread died in the syscall
 * without the exit tracepoint) ages out instead of filling the map */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct udp_pending);
} udp_pending SEC(".maps");

/* the start of sockaddr_in and sockaddr_in6: the address follows at 4 (v4)
 * or 8 (v6, after flowinfo); read apart so a 16-byte sockaddr_in is never
 * read past its end */
struct udp_sockaddr_head {
	__u16 family;
	__u16 port; /* network order */
};

/* The peer in a caller's sockaddr into ep->daddr/dport/family; false when it
 * is unreadable or names no IP peer (AF_UNSPEC, AF_UNIX...). */
static __always_inline bool udp_read_sockaddr(const void *uaddr, struct gadget_endpoints *ep)
{
	struct udp_sockaddr_head sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), uaddr))
		return false;
	__builtin_memset(ep->daddr, 0, 16);
	if (sa.family == GADGET_AF_INET) {
		if (bpf_probe_read_user(ep->daddr, 4, uaddr + 4))
			return false;
	} else if (sa.family == GADGET_AF_INET6) {
		if (bpf_probe_read_user(ep->daddr, 16, uaddr + 8))
			return false;
	} else {
		return false;
	}
	ep->family = sa.family;
	ep->dport = bpf_ntohs(sa.port);
	return true;
}

/* The UDP sock of a filtered-in task's fd (IPv4 or IPv6; IPPROTO_UDP is 17
 * in other families' numbering too), or NULL. */
static __always_inline struct sock *udp_sock_of(int fd)
{
	if (gadget_skip_current())
		return NULL;
	struct sock *sk = gadget_sock_of_fd(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return family == GADGET_AF_INET || family == GADGET_AF_INET6 ? sk : NULL;
}

/* At a send's entry: its destination (the sockaddr, else the connected peer), kept for the exit. */
static __always_inline void udp_send_enter(int fd, const void *uaddr)
{
	struct sock *sk = udp_sock_of(fd);
	if (!sk)
		return;
	struct udp_pending p = { .sk = (__u64)sk, .dir = UDP_DIR_SEND };
	gadget_sock_endpoints(sk, &p.ep);
	if (uaddr && !udp_read_sockaddr(uaddr, &p.ep))
		return;
	if (!p.ep.dport)
		return; /* unconnected and no address: the send fails (EDESTADDRREQ) */
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&udp_pending, &tid, &p, BPF_ANY);
}

/* At a receive's entry: where the caller wants the source address written. */
static __always_inline void udp_recv_enter(int fd, const void *uaddr)
{
	struct sock *sk = udp_sock_of(fd);
	if (!sk)
		return;
	struct udp_pending p = { .sk = (__u64)sk, .uaddr = (__u64)uaddr, .dir = UDP_DIR_RECV };
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&udp_pending, &tid, &p, BPF_ANY);
}

/* At exit of either: the first event per process, direction, local port and peer. */
static __always_inline void udp_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct udp_pending *pp = bpf_map_lookup_elem(&udp_pending, &tid);
	if (!pp)
		return;
	struct udp_pending p = *pp;
	bpf_map_delete_elem(&udp_pending, &tid);
	if (ret < 0)
		return; /* failed: EAGAIN, EPERM, ECONNREFUSED... */
	struct sock *sk = (struct sock *)p.sk;
	struct gadget_endpoints ep;
	/* the local end now: the send bound an unbound socket */
	gadget_sock_endpoints(sk, &ep);
	if (p.dir == UDP_DIR_SEND) {
		if (p.ep.family != ep.family)
			__builtin_memset(ep.saddr, 0, 16); /* a v6 socket sent to an AF_INET address: its local address is of the other family */
		__builtin_memcpy(ep.daddr, p.ep.daddr, 16);
		ep.dport = p.ep.dport;
		ep.family = p.ep.family;
	} else if (p.uaddr) {
		struct gadget_endpoints src = ep;
		if (!udp_read_sockaddr((const void *)p.uaddr, &src))
			return;
		if (src.family != ep.family)
			__builtin_memset(src.saddr, 0, 16);
		ep = src;
	}
	if (!ep.dport)
		return; /* a receive on an unconnected socket that did not ask for the source */

	struct udp_seen_key key = {};
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.family = ep.family;
	key.lport = ep.sport;
	key.rport = ep.dport;
	key.dir = p.dir;
	__builtin_memcpy(key.raddr, ep.daddr, 16);
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
	e->op = p.dir == UDP_DIR_SEND ? ADVISE_OP_UDP_SEND : ADVISE_OP_UDP_RECV;
	e->__pad0 = 0;
	gadget_submit(e);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	/* sendto(fd, buf, len, flags, addr, addrlen); send() is sendto with no address */
	udp_send_enter((int)ctx->args[0], (const void *)ctx->args[4]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg = {};
	if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)ctx->args[1]))
		return 0;
	udp_send_enter((int)ctx->args[0], msg.msg_name);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct mmsghdr first = {};
	if (!ctx->args[2] || bpf_probe_read_user(&first, sizeof(first), (const void *)ctx->args[1]))
		return 0;
	udp_send_enter((int)ctx->args[0], first.msg_hdr.msg_name);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	/* recvfrom(fd, buf, len, flags, addr, addrlen); recv() is recvfrom with no address */
	udp_recv_enter((int)ctx->args[0], (const void *)ctx->args[4]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg = {};
	if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)ctx->args[1]))
		return 0;
	udp_recv_enter((int)ctx->args[0], msg.msg_name);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmmsg")
int enter_recvmmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct mmsghdr first = {};
	if (!ctx->args[2] || bpf_probe_read_user(&first, sizeof(first), (const void *)ctx->args[1]))
		return 0;
	udp_recv_enter((int)ctx->args[0], first.msg_hdr.msg_name);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx) { udp_exit(ctx->ret); return 0; }

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { udp_exit(ctx->ret); return 0; }

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int exit_sendmmsg(struct trace_event_raw_sys_exit *ctx) { udp_exit(ctx->ret); return 0; }

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { udp_exit(ctx->ret); return 0; }

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { udp_exit(ctx->ret); return 0; }

SEC("tracepoint/syscalls/sys_exit_recvmmsg")
int exit_recvmmsg(struct trace_event_raw_sys_exit *ctx) { udp_exit(ctx->ret); return 0; }
