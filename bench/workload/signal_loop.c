// SPDX-License-Identifier: Apache-2.0
/* N SIGUSR1 sent to itself with kill(2) and delivered to a handler: N
 * signal_generate events with result "delivered". */
#include <signal.h>
#include <unistd.h>
#include "loop_common.h"

static volatile sig_atomic_t received;
static void on_usr1(int sig) { (void)sig; received++; }

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 200000), failed = 0;
	signal(SIGUSR1, on_usr1);
	pid_t self = getpid();
	double start = now_s();
	for (long i = 0; i < n; i++)
		if (kill(self, SIGUSR1) < 0)
			failed++;
	return report(n, failed + (n - received), start);
}
