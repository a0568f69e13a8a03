#ifndef TRACE_SIGNAL_H
#define TRACE_SIGNAL_H

#include "include/event_head.h"

/* `result` beyond the kernel's enum trace_signal_result (TRACE_SIGNAL_DELIVERED
 * 0 .. TRACE_SIGNAL_LOSE_INFO 4): a kill-family syscall that returned < 0. */
#define SIGNAL_RESULT_FAILED 5

/* One signal: generated (tp_btf/signal_generate) or a send that failed (the
 * exit of kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo,
 * pidfd_send_signal with ret < 0). The sender is the current task. */
struct signal_event {
	GADGET_EVENT_HEAD; /* of the sender */
	__s32 tpid;      /* target process (tgid); for a failed send the pid argument as passed */
	__s32 ttid;      /* target thread; 0 when a failed send named a process */
	__s32 signal;
	__s32 code;      /* si_code */
	__s32 result;    /* TRACE_SIGNAL_* or SIGNAL_RESULT_FAILED */
	__s32 ret;       /* 0, or the failed send's -errno */
	char comm[16];   /* sender */
	char tcomm[16];  /* target; empty for a failed send */
};

#endif
