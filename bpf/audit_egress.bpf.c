// SPDX-License-Identifier: GPL-2.0
/* audit/egress: an allow-list for the run's outgoing traffic, enforced in
 * the kernel. cgroup connect4/6 and sendmsg4/6 programs look the destination
 * up in `allow_cidrs`; block mode refuses what no rule allows (return 0: the
 * caller gets EPERM), audit mode lets it through; both report it. A
 * cgroup_skb/ingress program reads the run's DNS answers (UDP from port 53)
 * before they reach its socket: the A and AAAA answers to a question whose
 * name is allowed go into `allow_cidrs` first, so a connect that follows the
 * answer is never refused. It always returns 1: an answer is never dropped.
 *
 * The programs hang on the cgroup v2 root (bpf_links, which are multi: they
 * run beside anyone else's), not on the workload's cgroup: the containers the
 * workload starts live in their runtime's cgroups (libpod_parent/libpod-<id>,
 * machine.slice/…), elsewhere in the tree. So every socket of the node runs
 * them, and they judge only the run's (egress_current_in_run): the workload's
 * cgroup and below, a process descending from the workload by fork
 * (gadget_workload_tgids: conmon, runc, the container's init), and a cgroup
 * that is, or is below, a container the workload started
 * (gadget_containers, SELECTED at cgroup_mkdir by a workload process — runc
 * makes it before it starts the container's init). Both sets are filled by
 * raw tracepoints in the creating task's context, before the new process or
 * cgroup can run anything: no first connect escapes. Everyone else's
 * sockets pass untouched (return 1, nothing reported). */
#include "include/filter.h"
#include "audit_egress.h"
#define PACKET_CAPTURE_MAX 1024
#include "include/packet.h"

#define AF_INET 2
#define AF_INET6 10
#define DNS_PORT 53

/* 1: refuse what is not allowed (block); 0: report it and let it through (audit) */
const volatile __u32 egress_block = 0;
/* 1: report allowed attempts too (advise/egress learns from them, a baseline keys them) */
const volatile __u32 egress_report_allowed = 0;
/* allowed attempts by this rule index or later (loopback's, the resolvers') are never reported */
const volatile __s32 egress_quiet_from = 0x7fffffff;

GADGET_EVENT(egress_event);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct egress_cidr_key);
	__type(value, __s32);
} allow_cidrs SEC(".maps");

/* exact names and wildcard suffixes: one shape, two maps */
struct egress_name_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct egress_name_key);
	__type(value, struct egress_name_rule);
} allow_names SEC(".maps"), allow_suffixes SEC(".maps");

struct egress_addr {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct egress_addr);
	__type(value, struct egress_dns_value);
} dns_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct egress_seen_key);
	__type(value, __u8);
} reported SEC(".maps");

struct egress_scratch {
	struct egress_name_key key;    /* the question, wire format, lower case */
	struct egress_name_key suffix; /* a label suffix of it */
	__u8 raw[EGRESS_NAME_MAX];     /* the question as it came */
	struct egress_dns_value dns;   /* what dns_addrs gets */
	__u32 starts[EGRESS_MAX_LABELS];
	/* the question walk's state (egress_question_byte), here and not on the stack: a
	 * verifier must not know its start values. Before 6.7 (Debian's 6.1) it checks a bpf_loop
	 * callback once, from the state at the call, and deletes the branches that state does not
	 * take: with `left` a known 0 there, every byte became a label length and no name was ever
	 * learnt. A map value's fields are unknown to every verifier. */
	__u32 left;
	__u32 labels;
	__u32 end; /* the wire length once the root label was seen; 0: not a name we keep */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct egress_scratch);
} scratch SEC(".maps");

/* the deepest cgroup level searched for a container of the run (libpod_parent/libpod-<id> is 2,
 * kubepods/<qos>/pod<uid>/<id> 4); searched from the top, so nesting below a container does not hide it */
#define EGRESS_CONTAINER_LEVELS 16

/* A cgroup the workload's own runtime made for a container (user space never adds SELECTED
 * entries for this step: its scope has no selection, src/runner/recipe.ts). */
static __always_inline bool egress_run_container(__u64 cgroup_id)
{
	struct gadget_container *c = bpf_map_lookup_elem(&gadget_containers, &cgroup_id);
	return c && c->state == GADGET_CONTAINER_SELECTED;
}

/* The current task is the run's: the workload's cgroup or below, a descendant of the workload
 * (gadget_current_in_workload), or in one of its containers or below. A cgroup's ancestor at a
 * level past its own is 0: a task in the root (most of a node) costs no walk at all. */
static __always_inline bool egress_current_in_run(void)
{
	if (gadget_current_in_workload())
		return true;
	for (__u32 level = 1; level <= EGRESS_CONTAINER_LEVELS; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			return false;
		if (egress_run_container(id))
			return true;
	}
	return false;
}

/* A received packet's socket is the run's: its cgroup (the one its socket was made in) is the
 * workload's or below, or in one of its containers or below. A descendant of the workload
 * outside both has no task to know it by here: its DNS answers are not learnt, so its connects
 * to allowed names are refused (fails closed). */
static __always_inline bool egress_skb_in_run(struct __sk_buff *skb)
{
	if (targ_cgroup_id && bpf_skb_ancestor_cgroup_id(skb, targ_cgroup_level) == targ_cgroup_id)
		return true;
	for (int level = 1; level <= EGRESS_CONTAINER_LEVELS; level++) {
		__u64 id = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!id)
			return false;
		if (egress_run_container(id))
			return true;
	}
	return false;
}

/* The rule allowing addr:port/proto, or -1: port and proto exact, then each as a wildcard. */
static __always_inline __s32 egress_cidr_rule(const __u8 *addr, __u8 proto, __u16 port)
{
	struct egress_cidr_key k = { .prefixlen = 32 + 128 };
	__builtin_memcpy(k.addr, addr, 16);
	__s32 *r;
	k.proto = proto;
	k.port = port;
	if ((r = bpf_map_lookup_elem(&allow_cidrs, &k)))
		return *r;
	k.port = 0;
	if ((r = bpf_map_lookup_elem(&allow_cidrs, &k)))
		return *r;
	k.proto = 0;
	k.port = port;
	if ((r = bpf_map_lookup_elem(&allow_cidrs, &k)))
		return *r;
	k.port = 0;
	if ((r = bpf_map_lookup_elem(&allow_cidrs, &k)))
		return *r;
	return -1;
}

/* `family` is a constant per program: a connect4 program may not read user_ip6, nor connect6 user_ip4 */
static __always_inline int egress_check(struct bpf_sock_addr *ctx, __u8 hook, const __u16 family)
{
	/* on the cgroup root: every socket of the node comes here, only the run's are judged (first: the
	 * rest of the node pays for this check alone). The canary too: it joins the workload's cgroup,
	 * and proves this scope only from there */
	if (!egress_current_in_run())
		return 1;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	/* the liveness canary (its connects and datagrams, all in its own network namespace) is
	 * reported on every attempt, whatever the list allows, so that user space sees its marker
	 * (and drops it), and never refused: nothing it sends leaves its namespace */
	bool canary = gadget_canary_tgid && (pid_tgid >> 32) == gadget_canary_tgid;
	struct egress_addr a = {};
	if (family == AF_INET) {
		__u32 ip = ctx->user_ip4;
		a.addr[10] = a.addr[11] = 0xff;
		__builtin_memcpy(&a.addr[12], &ip, 4);
	} else if (family == AF_INET6) {
		__u32 w[4];
		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		__builtin_memcpy(a.addr, w, 16);
	} else {
		return 1;
	}
	__u16 port = (__u16)ctx->user_port;
	__u8 proto = ctx->protocol;
	__s32 rule = egress_cidr_rule(a.addr, proto, port);
	__u8 verdict = rule >= 0 ? EGRESS_ALLOWED : egress_block ? EGRESS_REFUSED : EGRESS_REPORTED;
	if (!canary && verdict == EGRESS_ALLOWED && (!egress_report_allowed || rule >= egress_quiet_from))
		return 1;

	struct egress_seen_key seen = { .pid = pid_tgid >> 32, .port = port, .proto = proto, .verdict = verdict };
	__builtin_memcpy(seen.addr, a.addr, 16);
	__u8 one = 1;
	/* each process's attempt to a destination once: a refused UDP sender retries per datagram
	 * (the canary's are not remembered: a process that later has its pid is reported afresh) */
	if (canary || bpf_map_update_elem(&reported, &seen, &one, BPF_NOEXIST) == 0) {
		struct egress_event *e = gadget_reserve(sizeof(*e));
		if (e) {
			struct task_struct *task = (struct task_struct *)bpf_get_current_task();
			gadget_fill_task(e, task);
			bpf_get_current_comm(e->comm, sizeof(e->comm));
			e->rule = rule;
			e->dport = port;
			e->family = family;
			e->proto = proto;
			e->hook = hook;
			e->verdict = verdict;
			__builtin_memset(e->pad, 0, sizeof(e->pad));
			if (family == AF_INET) {
				__builtin_memset(e->daddr, 0, 16);
				__builtin_memcpy(e->daddr, &a.addr[12], 4);
			} else {
				__builtin_memcpy(e->daddr, a.addr, 16);
			}
			struct egress_dns_value *dns = bpf_map_lookup_elem(&dns_addrs, &a);
			if (dns)
				__builtin_memcpy(e->name, dns->name, sizeof(e->name));
			else
				__builtin_memset(e->name, 0, sizeof(e->name));
			gadget_submit(e);
		}
	}
	return verdict == EGRESS_REFUSED && !canary ? 0 : 1;
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	return egress_check(ctx, EGRESS_HOOK_CONNECT, AF_INET);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	return egress_check(ctx, EGRESS_HOOK_CONNECT, AF_INET6);
}

SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	return egress_check(ctx, EGRESS_HOOK_SENDMSG, AF_INET);
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	return egress_check(ctx, EGRESS_HOOK_SENDMSG, AF_INET6);
}

/* The answer's source (the resolver), as a key of allow_cidrs. */
static __always_inline bool egress_source(struct __sk_buff *skb, struct egress_addr *src)
{
	__u8 first;
	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return false;
	if ((first >> 4) == 4) {
		src->addr[10] = src->addr[11] = 0xff;
		return bpf_skb_load_bytes(skb, 12, &src->addr[12], 4) == 0;
	}
	return bpf_skb_load_bytes(skb, 8, src->addr, 16) == 0;
}

/* The question's name, one byte per bpf_loop step (a callback is verified
 * once; an unrolled walk of 128 bytes with its branches is not verifiable):
 * s->key (wire, lower case, zero-padded), s->dns.name (dotted), the start of
 * each label. Its state is in the scratch (s->left, s->labels, s->end; the
 * scratch says why), the stack holds only the pointer to it. */
struct egress_qwalk {
	struct egress_scratch *s;
};

static long egress_question_byte(__u64 index, void *data)
{
	struct egress_qwalk *w = data;
	struct egress_scratch *s = w->s;
	__u32 i = index & (EGRESS_NAME_MAX - 1);
	__u32 prev = (index - 1) & (EGRESS_NAME_MAX - 1);
	__u8 c = s->raw[i];
	if (s->left == 0) {
		if (c == 0) {
			s->end = i + 1;
			return 1;
		}
		if (c > 63) /* a pointer in a question: not kept */
			return 1;
		if (s->labels < EGRESS_MAX_LABELS)
			s->starts[s->labels & (EGRESS_MAX_LABELS - 1)] = i;
		s->labels++;
		s->left = c;
		s->key.wire[i] = c;
		if (i > 0)
			s->dns.name[prev] = '.';
		return 0;
	}
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	s->key.wire[i] = c;
	if (i > 0)
		s->dns.name[prev] = c;
	s->left--;
	return 0;
}

/* The allow rules of the question's name: the exact name, else the nearest
 * wildcard (`*.b.c` is stored as b.c and matches a.b.c, x.a.b.c, not b.c). */
static __always_inline struct egress_name_rule *egress_name_rules(struct egress_scratch *s, __u32 labels, __u32 wire_len)
{
	struct egress_name_rule *r = bpf_map_lookup_elem(&allow_names, &s->key);
	if (r)
		return r;
	for (__u32 j = 1; j < EGRESS_MAX_LABELS; j++) {
		if (j >= labels)
			break;
		__u32 start = s->starts[j & (EGRESS_MAX_LABELS - 1)] & (EGRESS_NAME_MAX - 1);
		__u32 len = wire_len - start;
		if (wire_len <= start || len > EGRESS_NAME_MAX - 1)
			break;
		__builtin_memset(&s->suffix, 0, sizeof(s->suffix));
		if (!len)
			break;
		/* a copy of variable length without a loop; the bound on the very register the helper gets */
		asm volatile("%[len] &= %[mask]" : [len] "+r"(len) : [mask] "i"(EGRESS_NAME_MAX - 1));
		if (bpf_probe_read_kernel(s->suffix.wire, len, &s->key.wire[start]))
			break;
		r = bpf_map_lookup_elem(&allow_suffixes, &s->suffix);
		if (r)
			return r;
	}
	return NULL;
}

/* Past the owner name of a resource record: a pointer, or labels ending in
 * one or in the root; a label per bpf_loop step. */
struct egress_nwalk {
	struct __sk_buff *skb;
	__u32 off;
	__u32 end; /* 0: malformed */
};

static long egress_name_label(__u64 index, void *data)
{
	struct egress_nwalk *w = data;
	__u8 c;
	if (bpf_skb_load_bytes(w->skb, w->off, &c, 1))
		return 1;
	if (c == 0) {
		w->end = w->off + 1;
		return 1;
	}
	if ((c & 0xc0) == 0xc0) {
		w->end = w->off + 2;
		return 1;
	}
	w->off += (__u32)c + 1;
	return 0;
}

static __always_inline __u32 egress_skip_name(struct __sk_buff *skb, __u32 off)
{
	struct egress_nwalk w = { .skb = skb, .off = off };
	bpf_loop(EGRESS_NAME_MAX / 2, egress_name_label, &w, 0);
	return w.end;
}

/* The answer section, one record per bpf_loop step. */
struct egress_awalk {
	struct __sk_buff *skb;
	struct egress_scratch *s;
	struct egress_name_rule *rules;
	__u32 off;
	__u32 answers;
};

static long egress_answer(__u64 index, void *data)
{
	struct egress_awalk *w = data;
	if (index >= w->answers)
		return 1;
	struct __sk_buff *skb = w->skb;
	__u32 off = egress_skip_name(skb, w->off);
	if (!off)
		return 1;
	__u8 rr[10];
	if (bpf_skb_load_bytes(skb, off, rr, sizeof(rr)))
		return 1;
	__u16 type = ((__u16)rr[0] << 8) | rr[1];
	__u16 rdlen = ((__u16)rr[8] << 8) | rr[9];
	off += sizeof(rr);
	w->off = off + rdlen;
	struct egress_addr a = {};
	if (type == 1 && rdlen == 4) {
		a.addr[10] = a.addr[11] = 0xff;
		if (bpf_skb_load_bytes(skb, off, &a.addr[12], 4))
			return 1;
	} else if (type == 28 && rdlen == 16) {
		if (bpf_skb_load_bytes(skb, off, a.addr, 16))
			return 1;
	} else {
		return 0; /* a CNAME, say: the addresses that follow are the question's */
	}
	struct egress_scratch *s = w->s;
	bpf_map_update_elem(&dns_addrs, &a, &s->dns, BPF_ANY);
	struct egress_name_rule *rules = w->rules;
	if (!rules)
		return 0;
	for (int r = 0; r < EGRESS_NAME_RULES; r++) {
		if ((__u32)r >= rules->count)
			break;
		struct egress_cidr_key k = { .prefixlen = 32 + 128, .proto = rules->proto[r], .port = rules->port[r] };
		__builtin_memcpy(k.addr, a.addr, 16);
		__s32 rule = rules->rule[r];
		/* a full map refuses: the connect that follows is refused too, so say it (counted as lost) */
		if (bpf_map_update_elem(&allow_cidrs, &k, &rule, BPF_ANY))
			__sync_fetch_and_add(&gadget_lost, 1);
	}
	return 0;
}

static __always_inline void egress_learn(struct __sk_buff *skb, struct packet_l4 *l4)
{
	__u32 zero = 0;
	struct egress_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return;
	__u32 off = l4->payload_off;
	__u8 hdr[12];
	if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)))
		return;
	/* a response, NOERROR, one question, some answers */
	if (!(hdr[2] & 0x80) || (hdr[3] & 0x0f) || hdr[4] || hdr[5] != 1)
		return;
	__u32 answers = ((__u32)hdr[6] << 8) | hdr[7];
	if (!answers)
		return;
	off += sizeof(hdr);
	if (skb->len <= off)
		return;
	__u32 len = skb->len - off;
	if (len > EGRESS_NAME_MAX)
		len = EGRESS_NAME_MAX;
	/* 1..EGRESS_NAME_MAX on the register the helper gets (include/packet.h says why) */
	len -= 1;
	asm volatile("%[len] &= %[mask]" : [len] "+r"(len) : [mask] "i"(EGRESS_NAME_MAX - 1));
	len += 1;
	__builtin_memset(s->raw, 0, sizeof(s->raw));
	if (bpf_skb_load_bytes(skb, off, s->raw, len))
		return;
	__builtin_memset(&s->key, 0, sizeof(s->key));
	__builtin_memset(s->dns.name, 0, sizeof(s->dns.name));
	s->left = s->labels = s->end = 0;
	struct egress_qwalk q = { .s = s };
	bpf_loop(EGRESS_NAME_MAX, egress_question_byte, &q, 0);
	__u32 end = s->end;
	if (!end)
		return;

	/* names are learnt only from an allowed resolver: a workload must not allow itself addresses by answering its own queries from elsewhere */
	struct egress_addr src = {};
	struct egress_name_rule *rules = NULL;
	if (egress_source(skb, &src) && egress_cidr_rule(src.addr, PACKET_IPPROTO_UDP, bpf_htons(DNS_PORT)) >= 0)
		rules = egress_name_rules(s, s->labels, end);
	s->dns.rule = rules ? rules->rule[0] : -1;
	s->dns.pad = 0;

	struct egress_awalk w = { .skb = skb, .s = s, .rules = rules, .off = off + end + 4 /* qtype, qclass */, .answers = answers };
	bpf_loop(EGRESS_MAX_ANSWERS, egress_answer, &w, 0);
}

SEC("cgroup_skb/ingress")
int egress_dns(struct __sk_buff *skb)
{
	struct packet_l4 l4 = {};
	/* the port first: the node's other packets come here too, and most are not DNS answers */
	if (packet_parse_l4(skb, &l4) && l4.proto == PACKET_IPPROTO_UDP && l4.sport == DNS_PORT && egress_skb_in_run(skb))
		egress_learn(skb, &l4);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
