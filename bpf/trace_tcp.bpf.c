// SPDX-License-Identifier: GPL-2.0
/* trace/tcp: TCP connects, accepts and closes without kprobes. The syscalls
 * name the task (connect: the sock it connects; accept: the sock it gets),
 * sock/inet_sock_set_state says when a connect completes or fails and when a
 * connection is gone (include/tcp_owner.h). */
#include "include/filter.h"
#include "include/ringbuf.h"
#include "include/socket.h"
#include "include/tcp_owner.h"
#include "trace_tcp.h"

GADGET_EVENT(tcp_event);

static __always_inline void emit(struct sock *sk, const struct tcp_owner *o, __u8 op, __s32 ret)
{
	struct tcp_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return;
	tcp_fill_sock_event(e, sk, o);
	e->ret = ret;
	e->op = op;
	e->__pad0 = 0;
	gadget_submit(e);
}

#define emit_connect(sk, o, ret) emit(sk, o, TCP_OP_CONNECT, ret)
TCP_OWNER_CONNECT_PROGRAMS(emit_connect)

static __always_inline int accepted(struct trace_event_raw_sys_exit *ctx)
{
	struct tcp_owner o;
	struct sock *sk = tcp_owner_accepted(ctx->ret, &o);
	if (sk)
		emit(sk, &o, TCP_OP_ACCEPT, (__s32)ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) { return accepted(ctx); }

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) { return accepted(ctx); }

SEC("tracepoint/sock/inet_sock_set_state")
int set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct tcp_owner o;
	__s32 ret = 0;
	struct sock *sk = (struct sock *)ctx->skaddr;
	switch (tcp_owner_state_change(ctx, true, &o, &ret)) {
	case TCP_CHANGE_CONNECTED:
	case TCP_CHANGE_CONNECT_FAILED:
		emit(sk, &o, TCP_OP_CONNECT, ret);
		break;
	case TCP_CHANGE_CLOSED:
		emit(sk, &o, TCP_OP_CLOSE, 0);
		break;
	default:
		break;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
