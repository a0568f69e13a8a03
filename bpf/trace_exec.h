#ifndef TRACE_EXEC_H
#define TRACE_EXEC_H

#include "include/event_head.h"

/* Inspektor Gadget keeps 128 bytes of arguments; we keep 4 KiB and count
 * the arguments we could not keep. */
#define EXEC_ARGS_SIZE 4096
#define EXEC_MAX_ARGS 128
#define EXEC_ARG_MAX 1024 /* bytes of one argument */

/* One execve/execveat, emitted at syscall exit. The record is variable
 * length: it ends after args_size bytes of args. */
struct exec_event {
	__u64 timestamp; /* CLOCK_BOOTTIME ns */
	GADGET_PROCESS_HEAD;
	__s32 ret; /* 0, or -errno */
	__u32 args_count; /* arguments kept in args */
	__u32 args_size;  /* bytes used in args, each argument NUL-terminated */
	__u32 args_truncated; /* 1 when arguments were cut or dropped */
	__u32 __pad;
	char comm[16];
	char pcomm[16];
	char args[EXEC_ARGS_SIZE];
};

#endif
