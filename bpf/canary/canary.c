/* The liveness canary (src/runner/canary.ts runs it): provokes one known event
 * per action, inside the cgroup the steps watch, so each step can prove that
 * its hooks deliver events from its scope through the ring and the decoder
 * before the workload starts. Every action stays inside this process (one
 * tgid, which is how user space recognises the markers and drops them): the
 * network actions run in a private network namespace, the mount in a private
 * mount namespace, the file is its own and removed.
 *
 *   canary [--cgroup DIR] ACTION...   (signal signal=N file mount net tls dns
 *                                      egress seccomp slow=MS[,DIR] disk=DIR exec)
 *
 * It joins DIR's cgroup.procs first, then waits for one byte on stdin (the
 * runner has told the steps its pid by then), then acts. As it reaches each
 * action it writes "ACTION NS" (CLOCK_MONOTONIC) on a line of stdout: each step's
 * budget counts from there, not from the helper's start, so a slow machine
 * (a TCG guest) running the actions before a step's is not taken for a deaf
 * step. Exit 0, or 2 with "canary: ACTION: why" on stderr. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *action = "start";

/* tell the runner this action starts now, and when (CLOCK_MONOTONIC, ns: the
 * runner's clock too, so a runner busy when the line comes still counts from
 * here); it may not be listening (stdout is then /dev/null or closed), which
 * changes nothing for the action */
static void reached(const char *name)
{
	char line[4200];
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int n = snprintf(line, sizeof(line), "%s %lld\n", name, (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
	if (n > 0 && n < (int)sizeof(line))
		(void)!write(1, line, (size_t)n);
}

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
	/* The child is born with the step's signal blocked: it stays pending, and only our
	 * SIGKILL ends the child. Unblocked, a signal whose default action is fatal (SIGUSR1)
	 * could end it, and the kernel reap it, before the SIGKILL (ESRCH: the 6.1 and 6.12
	 * guests' other vCPU ran the child first), or its pid be reused by then. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, sig);
	if (sigprocmask(SIG_BLOCK, &block, &old))
		fail("block the signal");
	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child == 0) {
		for (;;)
			pause();
	}
	if (sigprocmask(SIG_SETMASK, &old, NULL))
		fail("unblock the signal");
	/* SIGKILL as the step's signal cannot be blocked: it ended the child already */
	if (kill(child, sig) || (sig != SIGKILL && kill(child, SIGKILL)))
		fail("kill the child");
	if (kill(2147483647, sig) == 0 || errno != ESRCH)
		fail("a send that fails");
	/* Wait until the child is gone (SIGCHLD ignored: waitpid returns ECHILD once it is). A
	 * child still dying when this process moves on may outlive it and be reparented; its exit
	 * then signals the new parent, an event whose sender is the child, not the canary, which
	 * reached a step's results on a host at load 190. Dying now, with SIGCHLD ignored here,
	 * it signals nobody. */
	while (waitpid(child, NULL, 0) >= 0 || errno == EINTR)
		;
	if (errno != ECHILD)
		fail("wait for the child");
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

/* audit/egress: a TCP connect and a UDP datagram to 192.0.2.1:9 (TEST-NET-1,
 * never routed) from the private network namespace, where nothing but
 * loopback exists: the cgroup connect4 and sendmsg4 programs see both, and
 * nothing leaves (the calls fail: unreachable, or refused by a block). */
static void do_egress(void)
{
	private_netns();
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(0xc0000201) };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (c < 0 || u < 0)
		fail("socket");
	(void)!connect(c, (struct sockaddr *)&a, sizeof(a));
	(void)!sendto(u, "x", 1, 0, (struct sockaddr *)&a, sizeof(a));
	close(c);
	close(u);
}

/* audit/seccomp: a thread of this process (a filter without TSYNC is its
 * thread's alone; the process's other actions and its exec stay unfiltered)
 * loads a filter that fails getppid with EPERM (SECCOMP_RET_ERRNO, not
 * logged to the audit log: the filter has no SECCOMP_FILTER_FLAG_LOG) and
 * calls it: its sys_exit without a sys_enter is the event. */
static void *seccomp_thread(void *out)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	const char **what = out;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		*what = "no_new_privs";
		return NULL;
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
		*what = "load the filter";
		return NULL;
	}
	errno = 0;
	if (syscall(SYS_getppid) != -1 || errno != EPERM)
		*what = "the filtered getppid was not refused";
	return NULL;
}

static void do_seccomp(void)
{
	pthread_t t;
	const char *what = NULL;
	int err = pthread_create(&t, NULL, seccomp_thread, &what);
	if (err) {
		errno = err;
		fail("start a thread");
	}
	pthread_join(t, NULL);
	if (what)
		fail(what);
}

/* Resolves the slow write's fault once `ms` have passed. */
struct slow_fault {
	int uffd;
	long ms;
	unsigned long page, size;
	const char *what;
};

static void *resolve_fault(void *arg)
{
	struct slow_fault *s = arg;
	struct uffd_msg msg;
	if (read(s->uffd, &msg, sizeof(msg)) != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT) {
		s->what = "wait for the fault";
		return NULL;
	}
	struct timespec d = { .tv_sec = s->ms / 1000, .tv_nsec = (s->ms % 1000) * 1000000L };
	while (nanosleep(&d, &d) && errno == EINTR)
		;
	struct uffdio_zeropage z = { .range = { .start = s->page, .len = s->size } };
	if (ioctl(s->uffd, UFFDIO_ZEROPAGE, &z))
		s->what = "resolve the fault";
	return NULL;
}

/* trace/fsslower: a write of one byte to a regular file that takes `ms` ms
 * or more, whatever the disk: its source byte is on a page that is not
 * there yet (userfaultfd), so the write waits in the kernel's copy until a
 * thread of this process fills the page, `ms` ms after the fault. The file
 * is a memfd (tmpfs), or a file made and unlinked at once in `dir` (a file
 * system the step names); nothing reaches a disk but that byte. */
static void do_slow(long ms, const char *dir)
{
	struct slow_fault s = { .ms = ms, .size = (unsigned long)sysconf(_SC_PAGESIZE) };
	s.uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (s.uffd < 0)
		fail("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(s.uffd, UFFDIO_API, &api))
		fail("userfaultfd API");
	char *buf = mmap(NULL, s.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		fail("mmap");
	s.page = (unsigned long)buf;
	struct uffdio_register reg = { .range = { .start = s.page, .len = s.size }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(s.uffd, UFFDIO_REGISTER, &reg))
		fail("userfaultfd register");
	int fd;
	if (dir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/.gadget-run-canary.%d", dir, getpid());
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			fail(path);
		unlink(path);
	} else {
		fd = (int)syscall(SYS_memfd_create, "gadget-run-canary", MFD_CLOEXEC);
		if (fd < 0)
			fail("memfd_create");
	}
	pthread_t t;
	int err = pthread_create(&t, NULL, resolve_fault, &s);
	if (err) {
		errno = err;
		fail("start a thread");
	}
	ssize_t n = write(fd, buf, 1);
	int saved = errno;
	pthread_join(t, NULL);
	if (s.what)
		fail(s.what);
	errno = saved;
	if (n != 1)
		fail("write");
	close(fd);
	munmap(buf, s.size);
	close(s.uffd);
}

/* top/block-io: one 4 KiB write that this process submits to the disk under
 * `dir` (a file made and unlinked at once): direct I/O, or where the file
 * system has none a buffered write and fdatasync, whose write-back the
 * caller submits too. */
static void do_disk(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/.gadget-run-canary.%d", dir, getpid());
	int direct = O_DIRECT;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0600);
	if (fd < 0 && errno == EINVAL) {
		direct = 0;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		fail(path);
	unlink(path);
	void *buf;
	if (posix_memalign(&buf, 4096, 4096)) {
		errno = ENOMEM;
		fail("memory");
	}
	memset(buf, 'x', 4096);
	ssize_t n = pwrite(fd, buf, 4096, 0);
	if (n < 0 && errno == EINVAL && direct) {
		/* some file systems take O_DIRECT at open and refuse it at write */
		if (fcntl(fd, F_SETFL, 0))
			fail("clear O_DIRECT");
		direct = 0;
		n = pwrite(fd, buf, 4096, 0);
	}
	if (n != 4096)
		fail("write");
	if (!direct && fdatasync(fd))
		fail("fdatasync");
	free(buf);
	close(fd);
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
	/* a runner that stopped reading our reports must not end an action with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	char go;
	action = "wait";
	if (read(0, &go, 1) != 1) {
		errno = EPIPE;
		fail("no go from the runner");
	}
	int exec = 0;
	for (; i < argc; i++) {
		action = argv[i];
		if (strcmp(action, "exec"))
			reached(action);
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
		else if (!strcmp(action, "egress"))
			do_egress();
		else if (!strcmp(action, "seccomp"))
			do_seccomp();
		else if (!strncmp(action, "slow=", 5)) {
			char *end;
			long ms = strtol(action + 5, &end, 10);
			if ((*end && *end != ',') || ms < 0 || ms > 60000) {
				errno = EINVAL;
				fail("milliseconds");
			}
			do_slow(ms, *end ? end + 1 : NULL);
		}
		else if (!strncmp(action, "disk=", 5))
			do_disk(action + 5);
		else if (!strcmp(action, "exec"))
			exec = 1;
		else {
			errno = EINVAL;
			fail("unknown action");
		}
	}
	if (exec) {
		action = "exec";
		reached(action);
		do_exec();
	}
	return 0;
}
