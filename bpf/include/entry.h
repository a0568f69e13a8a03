/* What a syscall's entry keeps for its exit, or a kprobe for its kretprobe,
 * which see only the return value: a hash map keyed by thread id (the call's
 * entry and return run in the same thread, and a thread is in one such call
 * at a time). fexit programs see their arguments and need none of this. */
#ifndef GADGET_ENTRY_H
#define GADGET_ENTRY_H

#include "gadget.h"

/* Calls in flight at once, machine-wide; an entry that finds the map full is
 * not reported (the exit finds nothing). */
#define GADGET_ENTRY_MAX 10240

#define GADGET_ENTRY_MAP(name, value_type)                      \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_HASH);                \
		__uint(max_entries, GADGET_ENTRY_MAX);          \
		__type(key, __u32);                             \
		__type(value, value_type);                      \
	} name SEC(".maps")

static __always_inline __u32 gadget_current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

#endif
