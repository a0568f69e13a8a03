#ifndef ADVISE_NETWORK_H
#define ADVISE_NETWORK_H

#include "trace_tcp.h"

/* advise/network-policy's events are trace/tcp's struct tcp_event, with two
 * more operations: a UDP datagram sent to daddr:dport, and one received from
 * daddr:dport (the peer), each the first per cgroup, process, local port and
 * peer (udp_seen). */
#define ADVISE_OP_UDP_SEND 4
#define ADVISE_OP_UDP_RECV 5

#endif
