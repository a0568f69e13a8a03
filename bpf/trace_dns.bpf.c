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

SEC("socket")
int dns_socket(struct __sk_buff *skb)
{
	if (dns_wanted(skb))
		packet_emit(skb, PACKET_HOOK_SOCKET);
	return PACKET_SOCKET_KEEP;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	if (dns_wanted(skb))
		packet_emit(skb, PACKET_HOOK_INGRESS);
	return PACKET_CGROUP_PASS;
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	if (dns_wanted(skb))
		packet_emit(skb, PACKET_HOOK_EGRESS);
	return PACKET_CGROUP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
