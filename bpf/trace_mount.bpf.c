// SPDX-License-Identifier: GPL-2.0
/* trace/mount: mount(2), umount2(2) and the new mount API (fsopen, fsconfig,
 * fsmount, move_mount). The arguments are remembered per thread at syscall
 * entry and the event is emitted at exit with the result and the latency;
 * the strings are read at exit, when the kernel has already faulted them in
 * (copy_mount_string), from the still-valid user pointers.
 *
 * Where each call's arguments go:
 *   mount(source, target, fs, flags, data)   all five
 *   umount2(target, flags)                   flags are MNT_* / UMOUNT_*
 *   fsopen(fs, flags)                        flags are FSOPEN_*
 *   fsconfig(fd, cmd, key, value, aux)       flags = cmd (FSCONFIG_*), data =
 *                                            "key=value" (or "key"), source =
 *                                            value when key is "source"
 *   fsmount(fd, flags, attr_flags)           flags = attr_flags (MOUNT_ATTR_*)
 *   move_mount(from_dfd, from, to_dfd, to, flags)  source = from, target = to */
#include "include/filter.h"
#include "include/entry.h"
#include "include/ringbuf.h"
#include "trace_mount.h"

GADGET_EVENT(mount_event);

#define FSCONFIG_SET_STRING 1
#define FSCONFIG_SET_PATH 3
#define FSCONFIG_SET_PATH_EMPTY 4

struct mount_args {
	__u64 start_ns;
	__u64 args[5];
};

GADGET_ENTRY_MAP(start, struct mount_args);

/* Reads only the `nargs` arguments the syscall has: attaching a program that
 * reads past a tracepoint's record fails with EACCES (perf checks the
 * verifier's max_ctx_offset against the record size), e.g. umount's two. */
static __always_inline int enter(struct trace_event_raw_sys_enter *ctx, int nargs)
{
	if (gadget_skip_current())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	/* one by one: a loop lets clang walk a moved ctx pointer, which the verifier refuses */
	struct mount_args a = {
		.start_ns = bpf_ktime_get_boot_ns(),
		.args = { ctx->args[0], ctx->args[1], nargs > 2 ? ctx->args[2] : 0,
			  nargs > 3 ? ctx->args[3] : 0, nargs > 4 ? ctx->args[4] : 0 },
	};
	bpf_map_update_elem(&start, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline void read_str(char *dst, __u32 size, __u64 uptr)
{
	if (!uptr || bpf_probe_read_user_str(dst, size, (void *)uptr) < 0)
		dst[0] = 0;
}

/* fsconfig's key, and its value for the string and path commands, as "key=value" */
static __always_inline void fsconfig_data(struct mount_event *e, struct mount_args *a)
{
	long n = a->args[2] ? bpf_probe_read_user_str(e->data, MOUNT_DATA_MAX / 2, (void *)a->args[2]) : -1;
	if (n <= 0) {
		e->data[0] = 0;
		return;
	}
	__u32 cmd = (__u32)a->args[1];
	if (cmd != FSCONFIG_SET_STRING && cmd != FSCONFIG_SET_PATH && cmd != FSCONFIG_SET_PATH_EMPTY)
		return;
	/* n counts the NUL: the '=' goes there, the value after it */
	__u32 eq = (n - 1) & (MOUNT_DATA_MAX / 2 - 1);
	e->data[eq] = '=';
	if (bpf_probe_read_user_str(e->data + eq + 1, MOUNT_DATA_MAX / 2, (void *)a->args[3]) < 0)
		e->data[eq + 1] = 0;
	if (cmd == FSCONFIG_SET_STRING && eq == 6 && e->data[0] == 's' && e->data[1] == 'o' &&
	    e->data[2] == 'u' && e->data[3] == 'r' && e->data[4] == 'c' && e->data[5] == 'e')
		read_str(e->source, sizeof(e->source), a->args[3]);
}

/* `op` is a constant in each exit program, so each keeps only its own case:
 * six copies of the whole switch made the object take ~3x as long to verify. */
static __always_inline int leave(struct trace_event_raw_sys_exit *ctx, __u32 op)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct mount_args *a = bpf_map_lookup_elem(&start, &tid);
	if (!a)
		return 0;

	struct mount_event *e = gadget_reserve(sizeof(*e));
	if (e) {
		gadget_fill_task(e, (struct task_struct *)bpf_get_current_task());
		e->latency = e->timestamp - a->start_ns;
		e->ret = (__s32)ctx->ret;
		e->op = op;
		e->flags = 0;
		e->fs[0] = 0;
		e->source[0] = 0;
		e->target[0] = 0;
		e->data[0] = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		switch (op) {
		case MOUNT_OP_MOUNT:
			read_str(e->source, sizeof(e->source), a->args[0]);
			read_str(e->target, sizeof(e->target), a->args[1]);
			read_str(e->fs, sizeof(e->fs), a->args[2]);
			e->flags = a->args[3];
			read_str(e->data, sizeof(e->data), a->args[4]);
			break;
		case MOUNT_OP_UMOUNT:
			read_str(e->target, sizeof(e->target), a->args[0]);
			e->flags = a->args[1];
			break;
		case MOUNT_OP_FSOPEN:
			read_str(e->fs, sizeof(e->fs), a->args[0]);
			e->flags = a->args[1];
			break;
		case MOUNT_OP_FSCONFIG:
			e->flags = (__u32)a->args[1];
			fsconfig_data(e, a);
			break;
		case MOUNT_OP_FSMOUNT:
			e->flags = a->args[2];
			break;
		case MOUNT_OP_MOVE_MOUNT:
			read_str(e->source, sizeof(e->source), a->args[1]);
			read_str(e->target, sizeof(e->target), a->args[3]);
			e->flags = a->args[4];
			break;
		}
		gadget_submit(e);
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

#define MOUNT_SYSCALL(name, op, nargs)                                                \
	SEC("tracepoint/syscalls/sys_enter_" #name)                             \
	int enter_##name(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, nargs); } \
	SEC("tracepoint/syscalls/sys_exit_" #name)                              \
	int exit_##name(struct trace_event_raw_sys_exit *ctx) { return leave(ctx, op); }

MOUNT_SYSCALL(mount, MOUNT_OP_MOUNT, 5)
/* umount2(2) is SYSCALL_DEFINE2(umount, ...): its tracepoints say "umount" */
MOUNT_SYSCALL(umount, MOUNT_OP_UMOUNT, 2)
MOUNT_SYSCALL(fsopen, MOUNT_OP_FSOPEN, 2)
MOUNT_SYSCALL(fsconfig, MOUNT_OP_FSCONFIG, 5)
MOUNT_SYSCALL(fsmount, MOUNT_OP_FSMOUNT, 3)
MOUNT_SYSCALL(move_mount, MOUNT_OP_MOVE_MOUNT, 5)

char LICENSE[] SEC("license") = "GPL";
