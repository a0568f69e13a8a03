// SPDX-License-Identifier: GPL-2.0
/* The floor for bench/traceloop.ts: tp_btf programs on sys_enter and
 * sys_exit that do nothing, the same hook pair and attach type traceloop
 * uses. Both run on every syscall of the node once attached, whatever they
 * do, so what traceloop costs a process it does not watch is measured
 * against this pair, not only against no program at all. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/sys_enter")
int BPF_PROG(empty_sys_enter, struct pt_regs *regs, long id)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(empty_sys_exit, struct pt_regs *regs, long ret)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
