// SPDX-License-Identifier: GPL-2.0
/* The floor for bench/seccomp.ts: a raw_tp on sys_enter that does nothing.
 * Any program there costs every syscall of the node; advise/seccomp-profile
 * is measured against this, not only against no program at all. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("raw_tp/sys_enter")
int empty_sys_enter(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
