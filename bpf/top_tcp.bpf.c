// SPDX-License-Identifier: GPL-2.0
/* top/tcp: bytes each task sends and receives per TCP connection, keyed by
 * (task, connection). Hooks, the first this kernel has:
 * - sock/sock_send_length and sock/sock_recv_length (tp_btf, Linux 6.3+):
 *   they fire in sock_sendmsg/sock_recvmsg, in the task that sends or
 *   receives, with the struct sock typed and the byte count: every send(2),
 *   write(2), sendmsg(2) and their receive twins pass there; only TCP socks
 *   count.
 * - before 6.3, the return of tcp_sendmsg and tcp_recvmsg, which those
 *   syscalls reach for TCP (fexit, else kprobe + kretprobe with the
 *   arguments kept per thread): the same bytes. Not tcp_cleanup_rbuf (BCC's
 *   tcptop): it also runs before a blocking receive waits for more data
 *   (MSG_WAITALL, SO_RCVLOWAT), counting those bytes twice, and for peeks.
 * Neither sees sendfile(2) or splice(2) before 6.5 (tcp_sendpage). */
#include "include/entry.h"
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

/* A peek leaves the bytes to a later receive, which counts them. */
static __always_inline int count_received(struct sock *sk, int ret, int flags)
{
	if (flags & GADGET_MSG_PEEK)
		return 0;
	return count(sk, ret, false);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(top_tcp_send, struct sock *sk, int ret, int flags)
{
	return count(sk, ret, true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(top_tcp_recv, struct sock *sk, int ret, int flags)
{
	return count_received(sk, ret, flags);
}

SEC("fexit/tcp_sendmsg")
int BPF_PROG(top_tcp_sendmsg_fexit, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return count(sk, ret, true);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(top_tcp_recvmsg_fexit, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int *addr_len, int ret)
{
	return count_received(sk, ret, flags);
}

/* A call between the kprobe and the kretprobe. Every entry overwrites its
 * thread's, so a return the kretprobe missed (more calls blocked at once
 * than its instances) leaves nothing that a later return would pick up. */
struct tcp_call {
	struct sock *sk;
	__s32 flags;
	__u32 __pad;
};

GADGET_ENTRY_MAP(calls, struct tcp_call);

static __always_inline int enter(struct sock *sk, int flags)
{
	struct tcp_call call = { .sk = sk, .flags = flags };
	__u32 tid = gadget_current_tid();
	bpf_map_update_elem(&calls, &tid, &call, BPF_ANY);
	return 0;
}

/* The call the current thread returns from, taken out of `calls`. */
static __always_inline bool leave(struct tcp_call *call)
{
	__u32 tid = gadget_current_tid();
	struct tcp_call *found = bpf_map_lookup_elem(&calls, &tid);
	if (!found)
		return false; /* entered before the probes were attached */
	*call = *found;
	bpf_map_delete_elem(&calls, &tid);
	return true;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(top_tcp_sendmsg_entry, struct sock *sk)
{
	return enter(sk, 0);
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(top_tcp_sendmsg_return, int ret)
{
	struct tcp_call call;
	return leave(&call) ? count(call.sk, ret, true) : 0;
}

SEC("kprobe/tcp_recvmsg")
int BPF_KPROBE(top_tcp_recvmsg_entry, struct sock *sk, struct msghdr *msg, size_t len, int flags)
{
	return enter(sk, flags);
}

SEC("kretprobe/tcp_recvmsg")
int BPF_KRETPROBE(top_tcp_recvmsg_return, int ret)
{
	struct tcp_call call;
	return leave(&call) ? count_received(call.sk, ret, call.flags) : 0;
}

char LICENSE[] SEC("license") = "GPL";
