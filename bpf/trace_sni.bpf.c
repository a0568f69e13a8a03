// SPDX-License-Identifier: GPL-2.0
/* trace/sni: TCP segments whose payload starts a TLS ClientHello (a
 * handshake record, type client_hello), on any port or on the ports user
 * space names; user space reads the server_name (include/packet.h). */
#include "include/filter.h"
#include "trace_sni.h"
#include "include/packet.h"

/* server ports to watch (either end of the segment); 0 ends the list */
const volatile __u16 targ_ports[SNI_MAX_PORTS] = {};

static __always_inline bool port_wanted(__u16 sport, __u16 dport)
{
	if (!targ_ports[0])
		return true;
#pragma unroll
	for (int i = 0; i < SNI_MAX_PORTS; i++) {
		if (!targ_ports[i])
			return false;
		if (targ_ports[i] == sport || targ_ports[i] == dport)
			return true;
	}
	return false;
}

static __always_inline bool sni_wanted(struct __sk_buff *skb)
{
	struct packet_l4 l4 = {};
	if (!packet_parse_l4(skb, &l4) || l4.proto != PACKET_IPPROTO_TCP || !port_wanted(l4.sport, l4.dport))
		return false;
	/* record type handshake, version 3.x, handshake type client_hello */
	__u8 head[6];
	if (bpf_skb_load_bytes(skb, l4.payload_off, head, sizeof(head)))
		return false;
	return head[0] == 0x16 && head[1] == 3 && head[5] == 1;
}

PACKET_PROGRAMS(sni, sni_wanted)

char LICENSE[] SEC("license") = "GPL";
