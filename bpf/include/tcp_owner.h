/* Which task a TCP sock belongs to, for the hook that has no task of its
 * own: sock/inet_sock_set_state runs wherever the state changes, often in
 * softirq (a SYN-ACK or RST arriving), where the current task is whatever
 * was interrupted. So the owner is recorded where the task is known (the
 * connect/accept syscalls of a filtered-in task), in a map keyed by the sock
 * pointer, and looked up at the state change; the record goes when the sock
 * reaches TCP_CLOSE (or right after connecting, for gadgets that need no
 * more). Limits: socks connected or accepted before the gadget started have
 * no owner (not seen); a sock handed to another process (fork, SCM_RIGHTS)
 * stays attributed to the task that connected or accepted it. */
#ifndef GADGET_TCP_OWNER_H
#define GADGET_TCP_OWNER_H

#include "entry.h"
#include "filter.h"
#include "socket.h"

#define GADGET_EINPROGRESS 115
#define GADGET_ECONNABORTED 103

struct tcp_owner {
	__u64 connect_ns; /* bpf_ktime_get_ns() at connect entry; 0 once connected, and for accepted socks */
	__u64 cgroup_id;
	__u64 mntns_id;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	char comm[TASK_COMM_LEN];
};

/* LRU: a sock freed without reaching TCP_CLOSE (never happens for a TCP
 * connection, but the map must not fill up if it did) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64); /* struct sock * */
	__type(value, struct tcp_owner);
} tcp_owners SEC(".maps");

/* the sock a thread is connecting, from connect entry to exit */
GADGET_ENTRY_MAP(tcp_connecting, __u64);

static __always_inline void tcp_owner_of_current(struct tcp_owner *o, __u64 connect_ns)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	o->connect_ns = connect_ns;
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->mntns_id = gadget_task_mntns((struct task_struct *)bpf_get_current_task());
	o->pid = pid_tgid >> 32;
	o->tid = (__u32)pid_tgid;
	o->uid = (__u32)uid_gid;
	o->gid = uid_gid >> 32;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

/* The identity of an event from the sock's owner (not the current task). */
#define tcp_fill_owner(e, o)                                            \
	do {                                                            \
		(e)->timestamp = bpf_ktime_get_boot_ns();               \
		(e)->cgroup_id = (o)->cgroup_id;                        \
		(e)->mntns_id = (o)->mntns_id;                          \
		(e)->pid = (o)->pid;                                    \
		(e)->tid = (o)->tid;                                    \
		(e)->uid = (o)->uid;                                    \
		(e)->gid = (o)->gid;                                    \
		__builtin_memcpy((e)->comm, (o)->comm, TASK_COMM_LEN);  \
	} while (0)

/* An event of a TCP sock: its owner (tcp_fill_owner) and both ends
 * (gadget_fill_endpoints). */
#define tcp_fill_sock_event(e, sk, o)                                   \
	do {                                                            \
		struct gadget_endpoints __ep;                           \
		gadget_sock_endpoints(sk, &__ep);                       \
		tcp_fill_owner(e, o);                                   \
		gadget_fill_endpoints(e, &__ep);                        \
	} while (0)

static __always_inline bool tcp_sock(struct sock *sk)
{
	return sk && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* At sys_enter_connect: record a filtered-in task connecting a fresh TCP sock. */
static __always_inline void tcp_owner_connect_enter(int fd)
{
	if (gadget_skip_current())
		return;
	struct sock *sk = gadget_sock_of_fd(fd);
	if (!tcp_sock(sk))
		return;
	/* a connect() repeated to poll for the result (EALREADY, EISCONN)
	 * keeps the first record and its start time */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_CLOSE)
		return;
	__u64 key = (__u64)sk;
	struct tcp_owner o;
	tcp_owner_of_current(&o, bpf_ktime_get_ns());
	bpf_map_update_elem(&tcp_owners, &key, &o, BPF_ANY);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&tcp_connecting, &tid, &key, BPF_ANY);
}

/* At sys_exit_connect: the sock of a connect that failed without any state
 * change (no route, no free port, bad address...), with its owner in *o and
 * the record dropped; NULL for every other outcome, which a state change
 * settles (connected, refused, timed out: before or after the exit). */
static __always_inline struct sock *tcp_owner_connect_exit(long ret, struct tcp_owner *o)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *skp = bpf_map_lookup_elem(&tcp_connecting, &tid);
	if (!skp)
		return NULL;
	__u64 key = *skp;
	bpf_map_delete_elem(&tcp_connecting, &tid);
	if (ret == 0 || ret == -GADGET_EINPROGRESS)
		return NULL;
	struct tcp_owner *rec = bpf_map_lookup_elem(&tcp_owners, &key);
	if (!rec)
		return NULL; /* refused or timed out: reported at SYN_SENT -> CLOSE */
	struct sock *sk = (struct sock *)key;
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_CLOSE)
		return NULL; /* e.g. -EINTR while SYN_SENT: the state change will tell */
	*o = *rec;
	bpf_map_delete_elem(&tcp_owners, &key);
	return sk;
}

/* The connect syscall's two programs, for every gadget that follows
 * connects: the entry records the owner; the exit reports, through
 * EMIT(sk, owner, ret), a connect that failed without any state change. */
#define TCP_OWNER_CONNECT_PROGRAMS(EMIT)                                        \
	SEC("tracepoint/syscalls/sys_enter_connect")                            \
	int enter_connect(struct trace_event_raw_sys_enter *ctx)                \
	{                                                                       \
		tcp_owner_connect_enter((int)ctx->args[0]);                     \
		return 0;                                                       \
	}                                                                       \
	SEC("tracepoint/syscalls/sys_exit_connect")                             \
	int exit_connect(struct trace_event_raw_sys_exit *ctx)                  \
	{                                                                       \
		struct tcp_owner o;                                             \
		struct sock *sk = tcp_owner_connect_exit(ctx->ret, &o);         \
		if (sk)                                                         \
			EMIT(sk, &o, (__s32)ctx->ret);                          \
		return 0;                                                       \
	}

/* At accept/accept4 exit: record the acceptor as the owner of the new sock. */
static __always_inline struct sock *tcp_owner_accepted(long fd, struct tcp_owner *o)
{
	if (fd < 0 || gadget_skip_current())
		return NULL;
	struct sock *sk = gadget_sock_of_fd(fd);
	if (!tcp_sock(sk))
		return NULL;
	__u64 key = (__u64)sk;
	tcp_owner_of_current(o, 0);
	bpf_map_update_elem(&tcp_owners, &key, o, BPF_ANY);
	return sk;
}

enum tcp_change {
	TCP_CHANGE_NONE,
	TCP_CHANGE_CONNECTED,	   /* SYN_SENT -> ESTABLISHED */
	TCP_CHANGE_CONNECT_FAILED, /* SYN_SENT -> CLOSE: refused, timed out, aborted */
	TCP_CHANGE_CLOSED,	   /* any other state -> CLOSE: the connection is gone */
};

/* Classify a state change of an owned sock; the owner goes to *o and, for a
 * failed connect, the error to *ret. `keep` keeps the record after connecting
 * (to see the close too). */
static __always_inline enum tcp_change
tcp_owner_state_change(struct trace_event_raw_inet_sock_set_state *ctx, bool keep,
		       struct tcp_owner *o, __s32 *ret)
{
	if (ctx->protocol != IPPROTO_TCP)
		return TCP_CHANGE_NONE;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	enum tcp_change change;
	if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED)
		change = TCP_CHANGE_CONNECTED;
	else if (oldstate == TCP_SYN_SENT && newstate == TCP_CLOSE)
		change = TCP_CHANGE_CONNECT_FAILED;
	else if (newstate == TCP_CLOSE)
		change = TCP_CHANGE_CLOSED;
	else
		return TCP_CHANGE_NONE;

	__u64 key = (__u64)ctx->skaddr;
	struct tcp_owner *rec = bpf_map_lookup_elem(&tcp_owners, &key);
	if (!rec)
		return TCP_CHANGE_NONE;
	*o = *rec;
	if (change == TCP_CHANGE_CONNECTED && keep) {
		rec->connect_ns = 0;
		return change;
	}
	bpf_map_delete_elem(&tcp_owners, &key);
	if (change == TCP_CHANGE_CONNECT_FAILED) {
		/* tcp_reset and tcp_write_err set sk_err before tcp_done moves the
		 * sock to CLOSE; unset means the caller closed it while connecting */
		int err = BPF_CORE_READ((struct sock *)ctx->skaddr, sk_err);
		*ret = err ? -err : -GADGET_ECONNABORTED;
	}
	return change;
}

#endif
