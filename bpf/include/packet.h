/* Packet gadgets (trace/dns, trace/sni): the event every one emits and the
 * capture the three hooks share. The BPF side only decides whether a packet
 * is interesting (protocol, ports, the first payload bytes) and copies its
 * bytes from the network header on; user space parses the protocol, so the
 * parser can follow compression pointers and extension lists that bounded
 * BPF loops could not.
 *
 * The hooks: SEC("socket") on an AF_PACKET SOCK_DGRAM socket (node-wide in
 * one network namespace; no task, the packet is seen from softirq or on the
 * transmit path of whatever task sends), and SEC("cgroup_skb/ingress|egress")
 * attached to the workload's cgroup (egress runs in the sending task's
 * context, so pid and comm are known there). For both, skb->data is the
 * network header: a SOCK_DGRAM packet socket strips the link-layer header
 * before the filter runs, and cgroup_skb runs at the IP layer.
 *
 * The gadget's header defines PACKET_CAPTURE_MAX and includes packet_event.h. */
#ifndef GADGET_PACKET_H
#define GADGET_PACKET_H

#include "gadget.h"
#include "filter.h" /* gadget_task_cgroup_id */
#include "ringbuf.h"
#include <bpf/bpf_endian.h>

#include "packet_event.h"

GADGET_EVENT(packet_event);

/* Where a packet's transport header and payload start, and its ports. */
struct packet_l4 {
	__u32 l4_off;
	__u32 payload_off;
	__u16 sport; /* host order */
	__u16 dport;
	__u8 proto;
};

/* The kernel's sk_buff behind the context: a socket filter's and a
 * cgroup_skb program's context register holds the struct sk_buff itself
 * (the verifier rewrites __sk_buff field loads into sk_buff ones). Linux
 * 6.2's bpf_cast_to_kern_ctx kfunc is this same cast made typed; here it is
 * read only through bpf_probe_read_kernel (BPF_CORE_READ), which takes the
 * context's address as a plain value from a CAP_PERFMON program on every
 * kernel, so one program serves 6.1 and later alike. */
static __always_inline struct sk_buff *packet_kern_skb(struct __sk_buff *skb)
{
	return (struct sk_buff *)(void *)skb;
}

/* IPv4 (no fragments past the first) or IPv6 (transport header right after
 * the fixed header: extension headers are not walked). */
static __always_inline bool packet_parse_l4(struct __sk_buff *skb, struct packet_l4 *l4)
{
	__u8 first;
	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return false;
	__u32 l4_off;
	if ((first >> 4) == 4) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return false;
		/* a later fragment has no transport header */
		if (ip.frag_off & bpf_htons(0x1fff))
			return false;
		l4->proto = ip.protocol;
		l4_off = (__u32)ip.ihl * 4;
	} else if ((first >> 4) == 6) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return false;
		l4->proto = ip6.nexthdr;
		l4_off = sizeof(struct ipv6hdr);
	} else {
		return false;
	}
	l4->l4_off = l4_off;
	if (l4->proto == PACKET_IPPROTO_UDP) {
		struct udphdr udp;
		if (bpf_skb_load_bytes(skb, l4_off, &udp, sizeof(udp)))
			return false;
		l4->sport = bpf_ntohs(udp.source);
		l4->dport = bpf_ntohs(udp.dest);
		l4->payload_off = l4_off + sizeof(udp);
		return true;
	}
	if (l4->proto == PACKET_IPPROTO_TCP) {
		struct tcphdr tcp;
		if (bpf_skb_load_bytes(skb, l4_off, &tcp, sizeof(tcp)))
			return false;
		l4->sport = bpf_ntohs(tcp.source);
		l4->dport = bpf_ntohs(tcp.dest);
		l4->payload_off = l4_off + (__u32)tcp.doff * 4;
		return true;
	}
	return false;
}

/* Copy the packet into the ring buffer. For the egress hook the current
 * task is the sender (cgroup_skb egress runs in process context for locally
 * generated packets); elsewhere there is no task to name. */
#define PACKET_OUTGOING 4 /* linux/if_packet.h */
/* "lo" has this ifindex in every network namespace (LOOPBACK_IFINDEX,
 * Linux 3.7+), and it is the only device with IFF_LOOPBACK */
#define PACKET_LOOPBACK_IFINDEX 1

/* A packet socket on a loopback device sees each packet twice: leaving
 * (PACKET_OUTGOING) and arriving (PACKET_HOST). Keep the arrival, as
 * libpcap does on "lo". */
static __always_inline bool packet_loopback_echo(struct __sk_buff *skb)
{
	return skb->pkt_type == PACKET_OUTGOING && skb->ifindex == PACKET_LOOPBACK_IFINDEX;
}

static __always_inline int packet_emit(struct __sk_buff *skb, __u8 hook)
{
	if (hook == PACKET_HOOK_SOCKET && packet_loopback_echo(skb))
		return 0;
	struct packet_event *e = gadget_reserve(sizeof(*e));
	if (!e)
		return 0;
	__u32 len = skb->len;
	if (len > PACKET_CAPTURE_MAX)
		len = PACKET_CAPTURE_MAX;
	if (len < 1) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	/* 1..PACKET_CAPTURE_MAX in a form the verifier tracks on the very
	 * register the helper gets (clang may otherwise test a copy) */
	len -= 1;
	asm volatile("%[len] &= %[mask]" : [len] "+r"(len) : [mask] "i"(PACKET_CAPTURE_MAX - 1));
	len += 1;
	if (bpf_skb_load_bytes(skb, 0, e->data, len)) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	e->timestamp = bpf_ktime_get_boot_ns();
	e->netns = BPF_CORE_READ(packet_kern_skb(skb), dev, nd_net.net, ns.inum);
	e->len = len;
	e->wire_len = skb->len;
	e->ifindex = skb->ifindex;
	e->hook = hook;
	e->pkt_type = skb->pkt_type;
	e->__pad[0] = e->__pad[1] = 0;
	/* Egress of a locally made packet runs in the sending task; a segment
	 * sent later from softirq (a TCP retransmit, a queued push) runs in
	 * whatever task was interrupted. The task's cgroup must be the
	 * socket's for the task to be named. Everything about the task is read
	 * from its task_struct: cgroup_skb programs may not call
	 * bpf_get_current_cgroup_id on 6.1, nor bpf_get_current_comm on 6.12. */
	struct task_struct *task = hook == PACKET_HOOK_EGRESS ? (struct task_struct *)bpf_get_current_task() : NULL;
	__u64 cgroup_id = task ? gadget_task_cgroup_id(task) : 0;
	if (cgroup_id && cgroup_id == bpf_skb_cgroup_id(skb)) {
		e->pid = BPF_CORE_READ(task, tgid);
		e->tid = BPF_CORE_READ(task, pid);
		e->cgroup_id = cgroup_id;
		e->mntns_id = gadget_task_mntns(task);
		BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	} else {
		e->pid = e->tid = 0;
		e->cgroup_id = e->mntns_id = 0;
		__builtin_memset(e->comm, 0, sizeof(e->comm));
	}
	gadget_submit(e);
	return 0;
}

/* A socket filter's return value is the bytes to keep for the socket: 0,
 * so the packet socket itself never queues anything (the copy went to the
 * ring). A cgroup_skb program returns 1: let the packet through. */
#define PACKET_SOCKET_KEEP 0
#define PACKET_CGROUP_PASS 1

/* A packet gadget's three programs, <name>_socket, <name>_ingress and
 * <name>_egress (the mode attaches the socket filter, or both cgroup_skb
 * ones): each copies the packets WANTED(skb) keeps into the ring. */
#define PACKET_PROGRAMS(name, WANTED)                                           \
	SEC("socket")                                                           \
	int name##_socket(struct __sk_buff *skb)                                \
	{                                                                       \
		if (WANTED(skb))                                                \
			packet_emit(skb, PACKET_HOOK_SOCKET);                   \
		return PACKET_SOCKET_KEEP;                                      \
	}                                                                       \
	SEC("cgroup_skb/ingress")                                               \
	int name##_ingress(struct __sk_buff *skb)                               \
	{                                                                       \
		if (WANTED(skb))                                                \
			packet_emit(skb, PACKET_HOOK_INGRESS);                  \
		return PACKET_CGROUP_PASS;                                      \
	}                                                                       \
	SEC("cgroup_skb/egress")                                                \
	int name##_egress(struct __sk_buff *skb)                                \
	{                                                                       \
		if (WANTED(skb))                                                \
			packet_emit(skb, PACKET_HOOK_EGRESS);                   \
		return PACKET_CGROUP_PASS;                                      \
	}

#endif
