#ifndef AUDIT_EGRESS_H
#define AUDIT_EGRESS_H

#include "include/event_head.h"

/* audit/egress: the workload's outgoing connects and datagrams checked
 * against an allow-list in the kernel (cgroup connect4/6, sendmsg4/6), and
 * the addresses its own DNS answers gave it, learnt before the answer
 * reaches the socket (cgroup_skb/ingress). */

#define EGRESS_NAME_MAX 128 /* a DNS name in wire format, 0-terminated (RFC 1035: 255; longer names are not learnt) */
#define EGRESS_MAX_ANSWERS 16
#define EGRESS_MAX_LABELS 16 /* label suffixes tried for wildcards */

#define EGRESS_HOOK_CONNECT 1
#define EGRESS_HOOK_SENDMSG 2

#define EGRESS_ALLOWED 1
#define EGRESS_REPORTED 2 /* audit mode: not allowed, let through */
#define EGRESS_REFUSED 3  /* block mode: the caller got EPERM */

/* One outgoing attempt. */
struct egress_event {
	GADGET_EVENT_HEAD;
	__s32 rule;	/* the allow rule that matched (its index), -1 none */
	__u16 dport;	/* network order */
	__u16 family;	/* AF_INET 2, AF_INET6 10 */
	__u8 proto;	/* IPPROTO_TCP 6, IPPROTO_UDP 17 */
	__u8 hook;	/* EGRESS_HOOK_* */
	__u8 verdict;	/* EGRESS_ALLOWED, REPORTED, REFUSED */
	__u8 pad[5];
	__u8 daddr[16];	/* IPv4 in the first 4 bytes */
	char comm[16];
	char name[EGRESS_NAME_MAX]; /* the DNS name the address came from, dotted; "" when none */
};

/* Key of `allow_cidrs` (LPM trie): proto and port first, so a lookup with
 * a wildcard (0) there and the full address finds rules of any length. The
 * prefix length counts bits from proto on: 32 + the address prefix
 * (IPv4 as ::ffff:a.b.c.d, so its prefix is 96 + n). */
struct egress_cidr_key {
	__u32 prefixlen;
	__u8 proto;	/* 0: any */
	__u8 pad;
	__u16 port;	/* network order; 0: any */
	__u8 addr[16];
};

/* Key of `allow_names` (exact names) and `allow_suffixes` (wildcards:
 * `*.npmjs.org` is stored as npmjs.org): the name in DNS wire format,
 * lower case, zero-padded. */
struct egress_name_key {
	__u8 wire[EGRESS_NAME_MAX];
};

/* Value of `allow_names` and `allow_suffixes`: the rules of one name (the
 * same name with up to 4 ports or protocols); its answers' addresses go into
 * allow_cidrs once per rule. */
#define EGRESS_NAME_RULES 4
struct egress_name_rule {
	__s32 rule[EGRESS_NAME_RULES];
	__u16 port[EGRESS_NAME_RULES]; /* network order; 0 any */
	__u8 proto[EGRESS_NAME_RULES]; /* 0 any */
	__u32 count;
};

/* Value of `dns_addrs`, keyed by an address (IPv4 as ::ffff:a.b.c.d):
 * the question its answer came from, and the allow rule of that name. */
struct egress_dns_value {
	__s32 rule;	/* -1: the name is not allowed */
	__u32 pad;
	char name[EGRESS_NAME_MAX];
};

/* Key of `reported`: each process's attempt to a destination is an event once. */
struct egress_seen_key {
	__u8 addr[16];
	__u32 pid;
	__u16 port;
	__u8 proto;
	__u8 verdict;
};

#endif
