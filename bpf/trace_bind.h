#ifndef TRACE_BIND_H
#define TRACE_BIND_H

#include "include/event_head.h"

/* opts bits: the socket options that change what a bind may take */
#define BIND_OPT_REUSEADDR 0x1		/* SO_REUSEADDR (sk_reuse) */
#define BIND_OPT_REUSEPORT 0x2		/* SO_REUSEPORT (sk_reuseport) */
#define BIND_OPT_FREEBIND 0x4		/* IP_FREEBIND / IPV6_FREEBIND */
#define BIND_OPT_TRANSPARENT 0x8	/* IP_TRANSPARENT / IPV6_TRANSPARENT */
#define BIND_OPT_BIND_ADDRESS_NO_PORT 0x10 /* IP_BIND_ADDRESS_NO_PORT */

#define BIND_MAX_PORTS 16

/* One bind(2) of an AF_INET/AF_INET6 address, emitted at syscall exit. */
struct bind_event {
	GADGET_EVENT_HEAD;
	__s32 ret; /* 0, or -errno */
	__s32 bound_dev_if; /* SO_BINDTODEVICE ifindex, 0 when unbound */
	__u32 opts; /* BIND_OPT_* */
	__u32 __pad0;
	__u16 proto; /* sk_protocol: IPPROTO_TCP, IPPROTO_UDP, ... */
	__u16 port; /* host byte order: the bound port on success, else the requested one */
	__u16 family; /* of the sockaddr passed: AF_INET or AF_INET6 */
	__u16 ipversion; /* 4 or 6 */
	__u8 addr[16]; /* as passed; IPv4 in the first 4 bytes */
	char comm[16];
};

#endif
