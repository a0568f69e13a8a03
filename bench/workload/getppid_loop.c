// SPDX-License-Identifier: Apache-2.0
/* N getppid() syscalls: about the cheapest syscall there is, so the figure is
 * the cost of the sys_enter/sys_exit hooks themselves (bench/traceloop.ts). */
#include <sys/syscall.h>
#include <unistd.h>
#include "loop_common.h"

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 2000000);
	double start = now_s();
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return report(n, 0, start);
}
