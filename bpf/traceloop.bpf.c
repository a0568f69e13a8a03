// SPDX-License-Identifier: GPL-2.0
/* traceloop: a flight recorder of syscalls. Every syscall of a watched task
 * is written at sys_enter into its cgroup's circular buffer (a slice of one
 * big array map, slot = seq % targ_slots), and its return value is added at
 * sys_exit into the slot remembered per thread. Nothing reaches user space
 * while the step runs: it reads the slots once, at stop. The buffer belongs
 * to the cgroup, not the process, so the last syscalls of a process that
 * crashed are still there when the step stops. Ring buffers never overwrite,
 * which is why this is an array. */
#include "include/filter.h"
#include "traceloop.h"

GADGET_EVENT(tl_slot);
GADGET_EVENT(tl_buf);
GADGET_EVENT(tl_pending);

/* slots per cgroup, and how many cgroups get a buffer (user space sizes the maps to match) */
const volatile __u32 targ_slots = 1024;
const volatile __u32 targ_max_cgroups = 16;
/* 1: only syscalls whose targ_syscall_on[nr] is set */
const volatile __u32 targ_syscall_filter = 0;
const volatile __u8 targ_syscall_on[TL_NR_MAX] = {};
/* per syscall number: 1 + the index of its path argument, 0 when it takes none
 * (user space fills it from its table of path-taking syscalls) */
const volatile __u8 targ_path_arg[TL_NR_MAX] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);	/* targ_max_cgroups */
	__type(key, __u64);		/* cgroup v2 id */
	__type(value, struct tl_buf);
} bufs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16 * 1024);	/* targ_max_cgroups * targ_slots */
	__type(key, __u32);
	__type(value, struct tl_slot);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);		/* tid */
	__type(value, struct tl_pending);
} pending SEC(".maps");

__u32 next_buf = 0;
/* syscalls not recorded: their cgroup came after targ_max_cgroups others */
__u64 dropped_syscalls = 0;

static __always_inline struct tl_buf *buf_of(__u64 cgroup_id)
{
	struct tl_buf *b = bpf_map_lookup_elem(&bufs, &cgroup_id);
	if (b)
		return b;
	if (next_buf >= targ_max_cgroups)
		return NULL;
	__u32 index = __sync_fetch_and_add(&next_buf, 1);
	if (index >= targ_max_cgroups)
		return NULL;
	struct tl_buf fresh = { .index = index };
	/* two CPUs may race on a new cgroup: the loser's index stays unused */
	bpf_map_update_elem(&bufs, &cgroup_id, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&bufs, &cgroup_id);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int traceloop_enter(struct trace_event_raw_sys_enter *ctx)
{
	long id = ctx->id;
	if (id < 0 || id >= TL_NR_MAX)
		return 0;
	if (targ_syscall_filter && !targ_syscall_on[id])
		return 0;
	if (gadget_skip_current())
		return 0;
	__u64 cgroup_id = bpf_get_current_cgroup_id();
	struct tl_buf *b = buf_of(cgroup_id);
	if (!b) {
		__sync_fetch_and_add(&dropped_syscalls, 1);
		return 0;
	}
	__u64 seq = __sync_fetch_and_add(&b->seq, 1);
	__u32 slot = b->index * targ_slots + (__u32)(seq % targ_slots);
	struct tl_slot *s = bpf_map_lookup_elem(&slots, &slot);
	if (!s)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	s->timestamp = bpf_ktime_get_boot_ns();
	s->cgroup_id = cgroup_id;
	s->mntns_id = gadget_task_mntns((struct task_struct *)bpf_get_current_task());
	s->pid = pid_tgid >> 32;
	s->tid = (__u32)pid_tgid;
	s->nr = id;
	s->done = 0;
	s->ret = 0;
	/* constant offsets: the verifier refuses a ctx pointer moved by a loop or an index */
	__u64 args[6] = { ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4], ctx->args[5] };
	__builtin_memcpy(s->args, args, sizeof(args));
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	__u8 pa = targ_path_arg[id];
	s->path_ptr = 0;
	s->path[0] = 0;
	if (pa >= 1 && pa <= 6) {
		/* & 7: a bound the verifier sees (pa <= 6, and args[6..7] would still be inside the slot) */
		s->path_ptr = s->args[(pa - 1) & 7];
		/* a page not yet faulted in fails here (no faults in this context): exit tries again */
		if (bpf_probe_read_user_str(s->path, sizeof(s->path), (void *)s->path_ptr) > 0)
			s->path_ptr = 0;
		else
			s->path[0] = 0;
	}
	s->seq = seq + 1;
	struct tl_pending p = { .seq = seq + 1, .slot = slot };
	__u32 tid = (__u32)pid_tgid;
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int traceloop_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct tl_pending *p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	__u32 slot = p->slot;
	struct tl_slot *s = bpf_map_lookup_elem(&slots, &slot);
	/* seq differs: the buffer went round while this thread slept in its syscall */
	if (s && s->seq == p->seq) {
		s->ret = ctx->ret;
		s->done = 1;
		if (s->path_ptr && bpf_probe_read_user_str(s->path, sizeof(s->path), (void *)s->path_ptr) <= 0)
			s->path[0] = 0;
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
