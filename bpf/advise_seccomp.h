#ifndef ADVISE_SECCOMP_H
#define ADVISE_SECCOMP_H

/* syscall numbers the bitmap holds: x86-64 has ~460; x32 (nr | 0x40000000)
 * and anything past this land in `unrecorded_syscalls` instead */
#define SECCOMP_NR_MAX 512

/* The value of the per-cgroup map: bit nr set once the cgroup made syscall nr. */
struct syscall_bitmap {
	__u64 bits[SECCOMP_NR_MAX / 64];
};

/* A thread's own record (task storage): the cgroup it records into and the
 * syscalls it made there, so that only its first of each reaches the hash. */
struct seccomp_thread {
	__u64 cgroup_id;
	struct syscall_bitmap seen;
};

#endif
