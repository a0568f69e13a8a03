// SPDX-License-Identifier: Apache-2.0
/* The open-heavy workload: N open+close of /dev/null, timed by itself so the
 * figure excludes process start-up and the tracer's own set-up. Its comm is
 * the binary name, which the tracers filter on (bench/run.ts runs a copy
 * named open_loop_<id> so that no other open_loop adds events). Linked
 * statically so the dynamic loader's opens do not add to the event count:
 * a traced run should see exactly N events.
 * Besides wall time it reports its CPU time (BPF programs run in its context
 * and count as its system time) and involuntary context switches: wall time
 * well above CPU time means it was kept off the CPU, by the tracer's
 * consumer or by anything else on the machine. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
	if (n <= 0) {
		fprintf(stderr, "usage: %s [N > 0]\n", argv[0]);
		return 2;
	}
	long failed = 0;
	double start = now_s();
	for (long i = 0; i < n; i++) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			failed++;
		else
			close(fd);
	}
	double elapsed = now_s() - start;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	printf("{\"n\":%ld,\"failed\":%ld,\"elapsed_s\":%.6f,\"cpu_s\":%.6f,\"preempted\":%ld}\n",
	       n, failed, elapsed, cpu, ru.ru_nivcsw);
	return failed ? 1 : 0;
}
