// SPDX-License-Identifier: GPL-2.0
/* snapshot/socket: the TCP and UDP sockets (IPv4 and IPv6) of one network
 * namespace, from BPF iterators. User space runs three passes in order:
 * socket_owners (iter/task_file) maps every socket inode to a process that
 * holds it; then snapshot_tcp (iter/tcp) and snapshot_udp (iter/udp), whose
 * iterator fds are created inside the namespace to list (the kernel walks
 * the namespace of the task that creates the fd), write one entry each. */
#include "include/filter.h"
#include "include/socket.h"
#include "snapshot_socket.h"

GADGET_EVENT(socket_entry);

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct socket_owner);
} owners SEC(".maps");

SEC("iter/task_file")
int socket_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if ((BPF_CORE_READ(inode, i_mode) & GADGET_S_IFMT) != GADGET_S_IFSOCK)
		return 0;
	__u64 ino = BPF_CORE_READ(inode, i_ino);
	struct socket_owner o = {};
	o.pid = BPF_CORE_READ(task, tgid);
	BPF_CORE_READ_STR_INTO(&o.comm, task, comm);
	/* the first holder found wins (a socket shared after fork has several) */
	bpf_map_update_elem(&owners, &ino, &o, BPF_NOEXIST);
	return 0;
}

static __always_inline void emit(struct seq_file *seq, struct sock_common *skc, __u8 protocol, __u32 uid)
{
	struct socket_entry e = {};
	e.protocol = protocol;
	e.uid = uid;
	e.family = BPF_CORE_READ(skc, skc_family);
	e.ipversion = e.family == GADGET_AF_INET6 ? 6 : 4;
	e.state = BPF_CORE_READ(skc, skc_state);
	/* skc_num is the local port (host order) for every kind of entry, the
	 * timewait and request socks too */
	e.sport = BPF_CORE_READ(skc, skc_num);
	e.dport = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	e.netns = BPF_CORE_READ(skc, skc_net.net, ns.inum);
	if (e.family == GADGET_AF_INET6) {
		BPF_CORE_READ_INTO(&e.saddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e.daddr, skc, skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)e.saddr, skc, skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e.daddr, skc, skc_daddr);
	}
	/* only full sockets have a struct socket (and so an inode): timewait
	 * and request socks are smaller structs, never read sk_socket there */
	if (e.state != 12 /* TCP_NEW_SYN_RECV */ && e.state != 6 /* TCP_TIME_WAIT */) {
		struct socket *sock = BPF_CORE_READ((struct sock *)skc, sk_socket);
		if (sock)
			e.inode = BPF_CORE_READ(sock, file, f_inode, i_ino);
	}
	if (e.inode) {
		struct socket_owner *o = bpf_map_lookup_elem(&owners, &e.inode);
		if (o) {
			e.pid = o->pid;
			__builtin_memcpy(e.comm, o->comm, sizeof(e.comm));
		}
	}
	bpf_seq_write(seq, &e, sizeof(e));
}

SEC("iter/tcp")
int snapshot_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	if (!skc)
		return 0;
	emit(ctx->meta->seq, skc, IPPROTO_TCP, ctx->uid);
	return 0;
}

SEC("iter/udp")
int snapshot_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;
	if (!udp)
		return 0;
	emit(ctx->meta->seq, (struct sock_common *)udp, IPPROTO_UDP, ctx->uid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
