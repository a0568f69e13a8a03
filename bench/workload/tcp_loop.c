// SPDX-License-Identifier: Apache-2.0
/* N loopback TCP connections to a listener of its own on 127.0.0.1:
 * connect, accept, close both ends. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "loop_common.h"

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 20000), failed = 0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len)) {
		perror("listen");
		return 2;
	}
	double start = now_s();
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr))) {
			failed++;
			if (c >= 0)
				close(c);
			continue;
		}
		int a = accept(lfd, NULL, NULL);
		if (a < 0)
			failed++;
		else
			close(a);
		/* closing the client second puts the TIME_WAIT on the accepted side's peer */
		close(c);
	}
	return report(n, failed, start);
}
