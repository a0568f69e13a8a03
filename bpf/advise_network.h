#ifndef ADVISE_NETWORK_H
#define ADVISE_NETWORK_H

#include "trace_tcp.h"

/* advise/network-policy's events are trace/tcp's struct tcp_event, with one
 * more operation: a UDP datagram sent to daddr:dport (the first one per
 * cgroup, process and destination: see udp_seen). */
#define ADVISE_OP_UDP_SEND 4

#endif
