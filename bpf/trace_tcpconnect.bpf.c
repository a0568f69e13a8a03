// SPDX-License-Identifier: GPL-2.0
/* trace/tcpconnect: active TCP connects with their latency, from the
 * connect() entry to SYN_SENT -> ESTABLISHED (include/tcp_owner.h: the
 * state change often runs in softirq, so the task comes from the syscall). */
#include "include/filter.h"
#include "include/ringbuf.h"
#include "include/socket.h"
#include "include/tcp_owner.h"
#include "trace_tcpconnect.h"

GADGET_EVENT(tcpconnect_event);

static __always_inline void emit(struct sock *sk, const struct tcp_owner *o, __s32 ret)
{
	struct tcpconnect_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return;
	tcp_fill_sock_event(e, sk, o);
	e->latency = bpf_ktime_get_ns() - o->connect_ns;
	e->ret = ret;
	e->__pad0 = 0;
	gadget_submit(e);
}

TCP_OWNER_CONNECT_PROGRAMS(emit)

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct tcp_owner o;
	__s32 ret = 0;
	enum tcp_change change = tcp_owner_state_change(ctx, false, &o, &ret);
	if (change == TCP_CHANGE_CONNECTED || change == TCP_CHANGE_CONNECT_FAILED)
		emit((struct sock *)ctx->skaddr, &o, ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
