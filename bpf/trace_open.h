#ifndef TRACE_OPEN_H
#define TRACE_OPEN_H

#include "include/event_head.h"

#define OPEN_PATH_MAX 256

/* One open/openat/openat2, emitted at syscall exit. */
struct open_event {
	GADGET_EVENT_HEAD;
	__s32 ret; /* fd, or -errno */
	__u32 flags;
	__u32 mode;
	__u32 __pad;
	char comm[16];
	char path[OPEN_PATH_MAX];
};

#endif
