// SPDX-License-Identifier: Apache-2.0
/* N getppid(2): the cheapest syscall there is, so the loop's time is mostly
 * the syscall entry, and a sys_enter hook's cost shows plainly. */
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
