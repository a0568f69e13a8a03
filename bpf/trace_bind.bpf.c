// SPDX-License-Identifier: GPL-2.0
/* trace/bind: bind(2) of IPv4/IPv6 addresses. The address the caller passed
 * is read at syscall entry (the user memory is the caller's; it may change
 * before exit); the socket, its protocol, options and bound port are read at
 * exit through the task's file table (include/socket.h). */
#include "include/filter.h"
#include "include/entry.h"
#include "include/ringbuf.h"
#include "include/socket.h"
#include "trace_bind.h"

GADGET_EVENT(bind_event);

/* Ports to report (host order); none listed = every port. */
const volatile __u16 targ_ports[BIND_MAX_PORTS] = {};
const volatile __u32 targ_nports = 0;
/* Only successful binds. */
const volatile bool targ_ignore_errors = false;

struct bind_args {
	__u8 addr[16];
	__s32 fd;
	__u16 port;
	__u16 family;
};

GADGET_ENTRY_MAP(start, struct bind_args);

static __always_inline bool port_wanted(__u16 port)
{
	if (!targ_nports)
		return true;
#pragma unroll
	for (int i = 0; i < BIND_MAX_PORTS; i++)
		if (i < targ_nports && targ_ports[i] == port)
			return true;
	return false;
}

SEC("tracepoint/syscalls/sys_enter_bind")
int enter_bind(struct trace_event_raw_sys_enter *ctx)
{
	if (gadget_skip_current())
		return 0;
	void *uaddr = (void *)ctx->args[1];
	struct bind_args args = { .fd = (__s32)ctx->args[0] };
	if (bpf_probe_read_user(&args.family, sizeof(args.family), uaddr))
		return 0;
	if (args.family == GADGET_AF_INET) {
		struct sockaddr_in sin = {};
		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		args.port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(args.addr, &sin.sin_addr.s_addr, 4);
	} else if (args.family == GADGET_AF_INET6) {
		struct sockaddr_in6 sin6 = {};
		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		args.port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(args.addr, sin6.sin6_addr.in6_u.u6_addr8, 16);
	} else {
		return 0; /* AF_UNIX, AF_NETLINK, AF_PACKET...: not an IP bind */
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

/* SO_REUSEADDR, SO_REUSEPORT and the inet flags of the sock. Linux 6.6 folded
 * the inet_sock bitfields into inet_flags bits; older kernels have the
 * bitfields, read through the ___old flavor when inet_flags is missing. */
struct inet_sock___old {
	__u8 freebind : 1;
	__u8 transparent : 1;
	__u8 bind_address_no_port : 1;
} __attribute__((preserve_access_index));

static __always_inline __u32 bind_opts(struct sock *sk)
{
	__u32 opts = 0;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuse))
		opts |= BIND_OPT_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuseport))
		opts |= BIND_OPT_REUSEPORT;
	struct inet_sock *inet = (struct inet_sock *)sk;
	if (bpf_core_field_exists(inet->inet_flags)) {
		/* the INET_FLAGS_* enum is anonymous: no CO-RE relocation for it */
		__u64 flags = BPF_CORE_READ(inet, inet_flags);
		if (flags & (1ULL << INET_FLAGS_FREEBIND))
			opts |= BIND_OPT_FREEBIND;
		if (flags & (1ULL << INET_FLAGS_TRANSPARENT))
			opts |= BIND_OPT_TRANSPARENT;
		if (flags & (1ULL << INET_FLAGS_BIND_ADDRESS_NO_PORT))
			opts |= BIND_OPT_BIND_ADDRESS_NO_PORT;
	} else {
		struct inet_sock___old *old = (void *)sk;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, freebind))
			opts |= BIND_OPT_FREEBIND;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, transparent))
			opts |= BIND_OPT_TRANSPARENT;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port))
			opts |= BIND_OPT_BIND_ADDRESS_NO_PORT;
	}
	return opts;
}

SEC("tracepoint/syscalls/sys_exit_bind")
int exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct bind_args *args = bpf_map_lookup_elem(&start, &tid);
	if (!args)
		return 0;
	__s32 ret = (__s32)ctx->ret;
	struct sock *sk = gadget_sock_of_fd(args->fd);
	/* a port-0 bind learns its port from the sock */
	__u16 port = ret == 0 && sk ? gadget_sock_local_port(sk) : args->port;
	if ((ret < 0 && targ_ignore_errors) || !port_wanted(port))
		goto out;

	struct bind_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		goto out;
	gadget_fill_task(e, (struct task_struct *)bpf_get_current_task());
	e->ret = ret;
	e->port = port;
	e->family = args->family;
	__builtin_memcpy(e->addr, args->addr, 16);
	e->proto = sk ? BPF_CORE_READ(sk, sk_protocol) : 0;
	e->bound_dev_if = sk ? BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if) : 0;
	e->opts = sk ? bind_opts(sk) : 0;
	e->__pad0 = 0;
	e->ipversion = args->family == GADGET_AF_INET6 ? 6 : 4;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	gadget_submit(e);
out:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
