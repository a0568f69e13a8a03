// SPDX-License-Identifier: GPL-2.0
/* top/tcp: sock/sock_send_length and sock/sock_recv_length (Linux 6.3+) fire
 * in sock_sendmsg/sock_recvmsg, in the task that sends or receives, with the
 * struct sock typed (tp_btf) and the byte count: every send(2), write(2),
 * sendmsg(2), splice to a socket and their receive twins passes there. Only
 * TCP socks count; the entry is keyed by (task, connection). */
#include "include/filter.h"
#include "include/socket.h"
#include "include/top.h"
#include <bpf/bpf_tracing.h>
#include "top_tcp.h"

GADGET_EVENT(top_tcp_key);
GADGET_EVENT(top_tcp_stats);

#define GADGET_IPPROTO_TCP 6
#define GADGET_MSG_PEEK 2

/* Only this address family (AF_INET or AF_INET6; 0 = both). */
const volatile __u16 targ_family = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GADGET_TOP_MAX_ENTRIES);
	__type(key, struct top_tcp_key);
	__type(value, struct top_tcp_stats);
} stats SEC(".maps");

static __always_inline int count(struct sock *sk, int ret, bool sent)
{
	if (ret <= 0 || !sk)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != GADGET_IPPROTO_TCP)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != GADGET_AF_INET && family != GADGET_AF_INET6)
		return 0;
	if (targ_family && family != targ_family)
		return 0;
	if (gadget_skip_current())
		return 0;

	struct gadget_endpoints ep;
	gadget_sock_endpoints(sk, &ep);
	struct top_tcp_key key = {};
	key.mntns_id = gadget_task_mntns((struct task_struct *)bpf_get_current_task());
	key.cgroup_id = bpf_get_current_cgroup_id();
	key.pid = bpf_get_current_pid_tgid() >> 32;
	gadget_fill_endpoints(&key, &ep);

	struct top_tcp_stats zero = {};
	struct top_tcp_stats *s = gadget_top_entry(&stats, &key, &zero);
	if (!s)
		return 0;
	if (!s->comm[0])
		bpf_get_current_comm(s->comm, sizeof(s->comm));
	if (sent)
		__sync_fetch_and_add(&s->sent, ret);
	else
		__sync_fetch_and_add(&s->received, ret);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(top_tcp_send, struct sock *sk, int ret, int flags)
{
	return count(sk, ret, true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(top_tcp_recv, struct sock *sk, int ret, int flags)
{
	/* a peek leaves the bytes to a later receive, which counts them */
	if (flags & GADGET_MSG_PEEK)
		return 0;
	return count(sk, ret, false);
}

char LICENSE[] SEC("license") = "GPL";
