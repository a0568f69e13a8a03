#ifndef TRACE_TCP_H
#define TRACE_TCP_H

#include "include/event_head.h"

#define TCP_OP_CONNECT 1
#define TCP_OP_ACCEPT 2
#define TCP_OP_CLOSE 3

/* A TCP connect, accept or close, attributed to the task that connected or
 * accepted the sock (include/tcp_owner.h). */
struct tcp_event {
	GADGET_EVENT_HEAD;
	__s32 ret; /* connect: 0 or -errno; accept: the new fd; close: 0 */
	__u32 __pad0;
	__u16 sport; /* host byte order, local end */
	__u16 dport;
	__u16 family; /* AF_INET or AF_INET6 */
	__u8 op; /* TCP_OP_* */
	__u8 ipversion; /* 4 or 6 */
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

#endif
