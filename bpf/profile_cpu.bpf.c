// SPDX-License-Identifier: GPL-2.0
/* profile/cpu: on every tick of a per-CPU cpu-clock perf event, count the
 * running task's (user, kernel) stack pair in a hash map. User space opens
 * one perf event per CPU at the step's frequency, attaches this program to
 * each, and reads and symbolizes the counts once, at the end. */
#include "include/filter.h"
#include "include/ringbuf.h"
#include "profile_cpu.h"

GADGET_EVENT(stack_key);
GADGET_EVENT(new_pid_event);

/* Which sides to walk: a side left out costs nothing and reads -1. */
const volatile bool targ_user_stacks = true;
const volatile bool targ_kernel_stacks = true;
/* Count the idle task (pid 0) too; off by default, as in BCC's profile. */
const volatile bool targ_include_idle = false;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PROFILE_MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, 16384);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stack_key);
	__type(value, __u64);
} counts SEC(".maps");

/* Processes already announced on the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} seen SEC(".maps");

/* Samples whose key did not fit in `counts` (it was full). */
__u64 dropped_samples = 0;

SEC("perf_event")
int profile_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32;

	if ((__u32)pid_tgid == 0 && !targ_include_idle)
		return 0;
	if (gadget_skip_current())
		return 0;

	struct stack_key key = {};
	key.pid = pid;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	key.user_stack_id = targ_user_stacks ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1;
	key.kernel_stack_id = targ_kernel_stacks ? bpf_get_stackid(ctx, &stacks, 0) : -1;

	__u64 *count = bpf_map_lookup_elem(&counts, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else {
		__u64 one = 1;
		/* another CPU may have inserted it meanwhile: then add to its entry */
		if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST)) {
			count = bpf_map_lookup_elem(&counts, &key);
			if (count)
				__sync_fetch_and_add(count, 1);
			else
				__sync_fetch_and_add(&dropped_samples, 1);
		}
	}

	__u8 yes = 1;
	if (pid && !bpf_map_update_elem(&seen, &pid, &yes, BPF_NOEXIST)) {
		struct new_pid_event e = { .pid = pid };
		gadget_output(&e, sizeof(e));
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
