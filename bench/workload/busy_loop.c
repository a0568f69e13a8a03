// SPDX-License-Identifier: Apache-2.0
/* profile/cpu's overhead workload: N rounds of pure arithmetic on one CPU,
 * no syscalls; the time a sampler steals (its interrupts and BPF program
 * run on this CPU) shows as a longer loop. */
#include "loop_common.h"

volatile unsigned long sink;

__attribute__((noinline)) static void busy_round(void)
{
	unsigned long x = sink;
	for (int i = 0; i < 100000; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	sink = x;
}

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 20000);
	double start = now_s();
	for (long i = 0; i < n; i++)
		busy_round();
	return report(n, 0, start);
}
