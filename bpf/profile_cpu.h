#ifndef PROFILE_CPU_H
#define PROFILE_CPU_H

/* Frames kept per stack (the kernel's PERF_MAX_STACK_DEPTH default). */
#define PROFILE_MAX_STACK_DEPTH 127

/* The key samples are counted under: one process and one (user, kernel)
 * stack pair. A stack id is negative (-EFAULT, -EEXIST...) when that side
 * was not collected or could not be walked. */
struct stack_key {
	__u32 pid;
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	__u32 __pad;
	char comm[16];
};

/* Sent once per process at its first sample, so user space reads its
 * /proc/PID/maps while it still runs (a short-lived process is gone by the
 * end of the profile). */
struct new_pid_event {
	__u32 pid;
	__u32 __pad;
};

#endif
