/* The liveness canary (src/runner/canary.ts runs it): provokes one known event
 * per action, inside the cgroup the steps watch, so each step can prove that
 * its hooks deliver events from its scope through the ring and the decoder
 * before the workload starts. Every action stays inside this process (one
 * tgid, which is how user space recognises the markers and drops them): the
 * network actions run in a private network namespace, the mount in a private
 * mount namespace, the file is its own and removed.
 *
 *   canary [--cgroup DIR] ACTION...   (signal signal=N file mount net tls dns exec)
 *
 * It joins DIR's cgroup.procs first, then waits for one byte on stdin (the
 * runner has told the steps its pid by then), then acts. Exit 0, or 2 with
 * "canary: ACTION: why" on stderr. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *action = "start";

static void fail(const char *what)
{
	fprintf(stderr, "canary: %s: %s: %s\n", action, what, strerror(errno));
	exit(2);
}

/* trace/signal: the step's signal (SIGUSR1 when any will do) sent to a child of
 * this process that waits for it, then SIGKILL to end it whatever its default
 * action, and one send that fails (to a pid above any pid_max: ESRCH). The
 * canary is the sender of all three, which is how the session knows them; the
 * child is reaped by the kernel (SIGCHLD ignored, so its exit raises no signal
 * of its own) and makes no other event. */
static void do_signal(int sig)
{
	if (signal(SIGCHLD, SIG_IGN) == SIG_ERR)
		fail("ignore SIGCHLD");
	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child == 0) {
		for (;;)
			pause();
	}
	if (kill(child, sig) || kill(child, SIGKILL))
		fail("kill the child");
	if (kill(2147483647, sig) == 0 || errno != ESRCH)
		fail("a send that fails");
}

/* an open of a marker path, a write and a read of it (trace/open, top/file) */
static void do_file(void)
{
	char path[64];
	char c = 'x';
	snprintf(path, sizeof(path), "/tmp/.gadget-run-canary.%d", getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		fail(path);
	unlink(path);
	if (write(fd, &c, 1) != 1)
		fail("write");
	if (pread(fd, &c, 1, 0) != 1)
		fail("read");
	/* read(2) of the file too: top/file counts read, pread64, readv alike */
	lseek(fd, 0, SEEK_SET);
	if (read(fd, &c, 1) != 1)
		fail("read");
	close(fd);
}

/* a tmpfs mounted in a private mount namespace (trace/mount) */
static void do_mount(void)
{
	if (unshare(CLONE_NEWNS))
		fail("unshare mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		fail("make / private");
	if (mount("gadget-run-canary", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k"))
		fail("mount tmpfs");
}

static int netns_ready;

/* a private network namespace with its loopback up */
static void private_netns(void)
{
	if (netns_ready)
		return;
	if (unshare(CLONE_NEWNET))
		fail("unshare network namespace");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail("socket");
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		fail("bring lo up");
	close(s);
	netns_ready = 1;
}

/* bind, listen, connect, accept, `payload` one way and a byte back over
 * loopback (trace/bind, trace/tcp, trace/tcpconnect, top/tcp; trace/sni with
 * the start of a TLS ClientHello) */
static void connect_loopback(const void *payload, size_t size)
{
	private_netns();
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		fail("socket");
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len))
		fail("bind and listen");
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)))
		fail("connect");
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		fail("accept");
	char b[64];
	if (send(c, payload, size, 0) != (ssize_t)size || recv(s, b, sizeof(b), 0) <= 0 || send(s, b, 1, 0) != 1 || recv(c, b, 1, 0) != 1)
		fail("send and receive");
	close(c);
	close(s);
	close(l);
}

static void do_net(void)
{
	connect_loopback("x", 1);
}

/* a TLS record header of a ClientHello (handshake, version 3.1, type 1) */
static void do_tls(void)
{
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00 };
	connect_loopback(hello, sizeof(hello));
}

/* a DNS query for gadget-run-canary.invalid to 127.0.0.1:53 (trace/dns) */
static void do_dns(void)
{
	static const unsigned char query[] = {
		0x67, 0x72, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		17, 'g', 'a', 'd', 'g', 'e', 't', '-', 'r', 'u', 'n', '-', 'c', 'a', 'n', 'a', 'r', 'y',
		7, 'i', 'n', 'v', 'a', 'l', 'i', 'd', 0,
		0x00, 0x01, 0x00, 0x01,
	};
	private_netns();
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || sendto(s, query, sizeof(query), 0, (struct sockaddr *)&a, sizeof(a)) != (ssize_t)sizeof(query))
		fail("sendto 127.0.0.1:53");
	close(s);
}

/* an exec of this binary, which exits at once (trace/exec): last, it ends the program */
static void do_exec(void)
{
	char *argv[] = { "canary", "--exit", NULL };
	char *envp[] = { NULL };
	execve("/proc/self/exe", argv, envp);
	fail("execve");
}

int main(int argc, char **argv)
{
	int i = 1;
	if (argc > 1 && !strcmp(argv[1], "--exit"))
		return 0;
	if (argc > 2 && !strcmp(argv[1], "--cgroup")) {
		char path[4096];
		action = "join the cgroup";
		snprintf(path, sizeof(path), "%s/cgroup.procs", argv[2]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			fail(path);
		close(fd);
		i = 3;
	}
	char go;
	action = "wait";
	if (read(0, &go, 1) != 1) {
		errno = EPIPE;
		fail("no go from the runner");
	}
	int exec = 0;
	for (; i < argc; i++) {
		action = argv[i];
		if (!strcmp(action, "signal"))
			do_signal(SIGUSR1);
		else if (!strncmp(action, "signal=", 7)) {
			char *end;
			long sig = strtol(action + 7, &end, 10);
			if (*end || sig < 1 || sig > 64) {
				errno = EINVAL;
				fail("signal number");
			}
			do_signal((int)sig);
		}
		else if (!strcmp(action, "file"))
			do_file();
		else if (!strcmp(action, "mount"))
			do_mount();
		else if (!strcmp(action, "net"))
			do_net();
		else if (!strcmp(action, "tls"))
			do_tls();
		else if (!strcmp(action, "dns"))
			do_dns();
		else if (!strcmp(action, "exec"))
			exec = 1;
		else {
			errno = EINVAL;
			fail("unknown action");
		}
	}
	if (exec)
		do_exec();
	return 0;
}
