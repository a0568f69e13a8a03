// SPDX-License-Identifier: Apache-2.0
/* N one-byte writes to a regular file (argv[3], created and removed) at
 * RATE writes per second (argv[2]): a steady load, so the tracer's own CPU
 * can be measured at a known event rate (bench/top.ts). */
#include <fcntl.h>
#include <unistd.h>
#include "loop_common.h"

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 2500000), failed = 0;
	double rate = argc > 2 ? strtod(argv[2], NULL) : 500000;
	const char *file = argc > 3 ? argv[3] : "paced_write_loop.tmp";
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || rate <= 0) {
		perror(file);
		return 2;
	}
	double start = now_s();
	for (long i = 0; i < n; i++) {
		if (write(fd, "x", 1) != 1)
			failed++;
		/* every 1000 writes, sleep off any lead over the schedule */
		if (i % 1000 == 999) {
			double ahead = start + (i + 1) / rate - now_s();
			if (ahead > 0)
				usleep((useconds_t)(ahead * 1e6));
		}
	}
	int rc = report(n, failed, start);
	close(fd);
	unlink(file);
	return rc;
}
