// SPDX-License-Identifier: Apache-2.0
/* What every bench workload prints about itself, as one JSON line: its loop's
 * wall time (CLOCK_MONOTONIC), its CPU time (BPF programs run in its context
 * and count as its system time) and its involuntary context switches. */
#ifndef LOOP_COMMON_H
#define LOOP_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long count_arg(int argc, char **argv, long fallback)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : fallback;
	if (n <= 0) {
		fprintf(stderr, "usage: %s [N > 0]\n", argv[0]);
		exit(2);
	}
	return n;
}

static int report(long n, long failed, double start)
{
	double elapsed = now_s() - start;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	printf("{\"n\":%ld,\"failed\":%ld,\"elapsed_s\":%.6f,\"cpu_s\":%.6f,\"preempted\":%ld}\n",
	       n, failed, elapsed, cpu, ru.ru_nivcsw);
	return failed ? 1 : 0;
}
#endif
