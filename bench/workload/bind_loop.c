// SPDX-License-Identifier: Apache-2.0
/* N binds of a fresh UDP socket to 127.0.0.1, port 0 (the kernel picks). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "loop_common.h"

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 50000), failed = 0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	double start = now_s();
	for (long i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)))
			failed++;
		if (s >= 0)
			close(s);
	}
	return report(n, failed, start);
}
