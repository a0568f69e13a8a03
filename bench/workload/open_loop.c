// SPDX-License-Identifier: Apache-2.0
/* The open-heavy workload: N open+close of /dev/null, timed by itself so the
 * figure excludes process start-up and the tracer's own set-up. Its comm is
 * the binary name, which the tracers filter on (bench/run.ts runs a copy
 * named open_loop_<id> so that no other open_loop adds events). Linked
 * statically so the dynamic loader's opens do not add to the event count:
 * a traced run should see exactly N events.
 * Its JSON line (loop_common.h): wall time well above CPU time means it was
 * kept off the CPU, by the tracer's consumer or by anything else. */
#include <fcntl.h>
#include <unistd.h>
#include "loop_common.h"

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 1000000);
	long failed = 0;
	double start = now_s();
	for (long i = 0; i < n; i++) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			failed++;
		else
			close(fd);
	}
	return report(n, failed, start);
}
