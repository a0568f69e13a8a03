/* What every gadget object includes: the kernel types, the helpers, and the
 * anchor that puts an event struct into the object's BTF. Filters and the
 * event ring live in their own headers (filter.h, ringbuf.h), so an object
 * pays only for what it includes: a snapshot carries no 16 MiB ring. */
#ifndef GADGET_H
#define GADGET_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16

/* Clang emits BTF only for types reachable from globals and maps; this
 * anchor puts a gadget's event struct in the object's BTF, where user space
 * reads its layout. */
#define GADGET_EVENT(type) const struct type *gadget_event_##type __attribute__((unused))

static __always_inline __u64 gadget_task_mntns(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

#endif
