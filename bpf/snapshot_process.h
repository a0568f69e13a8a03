#ifndef SNAPSHOT_PROCESS_H
#define SNAPSHOT_PROCESS_H

#include "include/event_head.h"

/* One task, as written by the iter/task program. */
struct process_entry {
	GADGET_PROCESS_HEAD;
	__u32 __pad;
	char comm[16];
};

#endif
