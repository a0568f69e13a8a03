// SPDX-License-Identifier: GPL-2.0
/* trace/dns: UDP port 53 packets, copied whole for user space to parse.
 * Node-wide through a socket filter on a packet socket, or for a workload
 * through cgroup_skb programs on its cgroup (include/packet.h). */
#include "include/filter.h"
#include "trace_dns.h"
#include "include/packet.h"

static __always_inline bool dns_wanted(struct __sk_buff *skb)
{
	struct packet_l4 l4 = {};
	return packet_parse_l4(skb, &l4) && l4.proto == PACKET_IPPROTO_UDP &&
	       (l4.sport == DNS_PORT || l4.dport == DNS_PORT);
}

PACKET_PROGRAMS(dns, dns_wanted)

char LICENSE[] SEC("license") = "GPL";
