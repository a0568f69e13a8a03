// SPDX-License-Identifier: Apache-2.0
/* N one-byte writes to a regular file (argv[2], created and removed). */
#include <fcntl.h>
#include <unistd.h>
#include "loop_common.h"

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 200000), failed = 0;
	const char *file = argc > 2 ? argv[2] : "write_loop.tmp";
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(file);
		return 2;
	}
	double start = now_s();
	for (long i = 0; i < n; i++)
		if (write(fd, "x", 1) != 1)
			failed++;
	int rc = report(n, failed, start);
	close(fd);
	unlink(file);
	return rc;
}
