// SPDX-License-Identifier: Apache-2.0
/* N UDP connect(2) of one socket to 127.0.0.1:9 and N sendto(2) of one byte
 * from another, unconnected socket to the same address: each call passes the
 * cgroup connect4 / sendmsg4 hooks the egress gadgets attach, and nothing
 * else costs much (no handshake; the discard port has no listener, so the
 * datagrams are dropped on loopback). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "loop_common.h"

int main(int argc, char **argv)
{
	long n = count_arg(argc, argv, 200000), failed = 0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int c = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
	if (c < 0 || s < 0) {
		perror("socket");
		return 2;
	}
	char byte = 0;
	double start = now_s();
	for (long i = 0; i < n; i++) {
		if (connect(c, (struct sockaddr *)&addr, sizeof(addr)))
			failed++;
		if (sendto(s, &byte, 1, 0, (struct sockaddr *)&addr, sizeof(addr)) != 1)
			failed++;
	}
	return report(n, failed, start);
}
