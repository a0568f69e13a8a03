/* Container sets: the cgroup v2 ids a step's events may come from when it
 * is scoped to containers, and the in-kernel tracking that adds containers
 * as they start. User space fills the set with the matching containers that
 * already run (src/containers/selection.ts); the kernel adds new ones itself
 * at cgroup_mkdir, because a user-space watcher would race `runc start` and
 * miss the entrypoint's first exec:
 * - a container whose runtime descends (by fork) from the workload joins as
 *   SELECTED (targ_containers_workload): conmon and runc leave the
 *   workload's cgroup, so ancestry is followed in gadget_workload_tgids;
 * - any other new container cgroup joins as PENDING when the step's
 *   selection may match containers not yet started (targ_containers_new);
 *   user space resolves it (name, image) and keeps it as SELECTED or
 *   deletes it. Events of a container that turns out not to match are
 *   dropped at evaluation (DIR/raw/containers.json records the verdict).
 * An object whose step has no container scope leaves targ_containers 0:
 * the verifier prunes the check. A node-wide step still sets
 * targ_containers_new, so that user space names each container that starts
 * while it runs, even one gone by the end (src/containers/selection.ts);
 * a workload-bound one loads none of the programs below (src/steps/prepare.ts).
 * The programs are raw_tp, not tp_btf: every field they read goes through
 * BPF_CORE_READ anyway, and a tp_btf program makes libbpf load and parse the
 * kernel's whole vmlinux BTF (5 MB, ~15 ms) at every load to find its attach
 * id, which a minimized CO-RE BTF (src/ebpf/core-btf.ts) otherwise spares
 * every object that includes this header. */
#ifndef GADGET_CONTAINERS_H
#define GADGET_CONTAINERS_H

#include "gadget.h"
#include <bpf/bpf_tracing.h>

#ifndef GADGET_FILTER_H
#error "include filter.h, which includes containers.h after the workload constants"
#endif

#define GADGET_CONTAINER_SELECTED 1
#define GADGET_CONTAINER_PENDING 2
/* the longest cgroup directory name read: "cri-containerd-" + 64 hex + ".scope" is 85 */
#define GADGET_CGROUP_NAME_LEN 128

/* 1: events count from the cgroups in gadget_containers */
const volatile __u32 targ_containers = 0;
/* 1: a new container cgroup joins gadget_containers as PENDING */
const volatile __u32 targ_containers_new = 0;
/* 1: a container created by a descendant of the workload joins as SELECTED */
const volatile __u32 targ_containers_workload = 0;

/* A member of the set. The kernel keeps the cgroup's directory name of the
 * containers it adds, so user space can name a container that came and went
 * between two of its passes. */
struct gadget_container {
	__u32 state;	/* GADGET_CONTAINER_* */
	char name[GADGET_CGROUP_NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);	/* cgroup v2 id */
	__type(value, struct gadget_container);
} gadget_containers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);	/* tgid descending from the workload */
	__type(value, __u8);
} gadget_workload_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gadget_container);
} gadget_container_heap SEC(".maps");

static __always_inline bool gadget_container_in_set(__u64 cgroup_id)
{
	return bpf_map_lookup_elem(&gadget_containers, &cgroup_id) != NULL;
}

static __always_inline bool gadget_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* name[0..len) == s (a literal of at most 15 characters, NUL-terminated) */
static __always_inline bool gadget_name_is(const char *name, int len, const char *s)
{
	for (int i = 0; i < 16; i++) {
		if (s[i] == 0)
			return i == len;
		if (i >= len || name[i] != s[i])
			return false;
	}
	return false;
}

/* Whether a cgroup directory name is a container's, as the runtimes name
 * them (src/containers/discovery.ts parses the same shapes in user space):
 * "<prefix>-<64 hex>[.scope]" with prefix libpod, docker, crio or
 * cri-containerd (systemd driver, and podman's cgroupfs driver), or a bare
 * "<64 hex>" (cgroupfs driver: /docker/<id>, /kubepods/.../pod<uid>/<id>).
 * "libpod-conmon-<id>.scope" (the monitor) is not the container. */
static __always_inline bool gadget_container_cgroup_name(const char *name, int len)
{
	if (len >= 6 && name[(len - 6) & 127] == '.' && name[(len - 5) & 127] == 's' &&
	    name[(len - 4) & 127] == 'c' && name[(len - 3) & 127] == 'o' &&
	    name[(len - 2) & 127] == 'p' && name[(len - 1) & 127] == 'e')
		len -= 6;
	if (len < 64 || len >= GADGET_CGROUP_NAME_LEN)
		return false;
	int start = len - 64;
	for (int i = 0; i < 64; i++) {
		if (!gadget_is_hex(name[(start + i) & 127]))
			return false;
	}
	if (start == 0)
		return true;
	if (name[(start - 1) & 127] != '-')
		return false;
	int plen = start - 1;
	return gadget_name_is(name, plen, "libpod") || gadget_name_is(name, plen, "docker") ||
	       gadget_name_is(name, plen, "crio") || gadget_name_is(name, plen, "cri-containerd");
}

/* The current task is the workload's: in its cgroup (targ_cgroup_id, from
 * filter.h, which includes this header) or forked from it. */
static __always_inline bool gadget_current_in_workload(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (targ_cgroup_id &&
	    bpf_get_current_ancestor_cgroup_id(targ_cgroup_level) == targ_cgroup_id)
		return true;
	return bpf_map_lookup_elem(&gadget_workload_tgids, &tgid) != NULL;
}

SEC("raw_tp/cgroup_mkdir")
int BPF_PROG(gadget_container_mkdir, struct cgroup *cgrp, const char *path)
{
	/* cgroup v1 hierarchies (hybrid hosts) get the same directories: only v2 ids are events' ids */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(cgrp, root) != BPF_CORE_READ(task, cgroups, dfl_cgrp, root))
		return 0;
	__u32 zero = 0;
	struct gadget_container *c = bpf_map_lookup_elem(&gadget_container_heap, &zero);
	if (!c)
		return 0;
	long n = bpf_probe_read_kernel_str(c->name, sizeof(c->name), BPF_CORE_READ(cgrp, kn, name));
	if (n <= 1 || !gadget_container_cgroup_name(c->name, (int)n - 1))
		return 0;
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	if (targ_containers_workload && gadget_current_in_workload()) {
		c->state = GADGET_CONTAINER_SELECTED;
		bpf_map_update_elem(&gadget_containers, &id, c, BPF_ANY);
	} else if (targ_containers_new) {
		c->state = GADGET_CONTAINER_PENDING;
		bpf_map_update_elem(&gadget_containers, &id, c, BPF_NOEXIST);
	}
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(gadget_container_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 tgid = BPF_CORE_READ(child, tgid);
	/* a new thread, not a new process */
	if (tgid == BPF_CORE_READ(parent, tgid))
		return 0;
	if (gadget_current_in_workload()) {
		__u8 one = 1;
		bpf_map_update_elem(&gadget_workload_tgids, &tgid, &one, BPF_ANY);
	}
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(gadget_container_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (BPF_CORE_READ(p, pid) == tgid)
		bpf_map_delete_elem(&gadget_workload_tgids, &tgid);
	return 0;
}

#endif
