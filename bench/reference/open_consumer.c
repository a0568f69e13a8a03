// SPDX-License-Identifier: Apache-2.0
/* The C reference consumer: the same build/bpf/trace_open.bpf.o that
 * gadget-run loads, driven through plain libbpf 1.1 with the same comm
 * filter, ring size and drain cadence, counting events and doing nothing
 * else with them. It is the floor gadget-run's workload time is held to.
 *
 * usage: open_consumer OBJECT COMM [RING_BYTES]
 * stderr: "ready <ms from main to all attached>" once every program is attached
 * stdout on SIGINT/SIGTERM: {"events":..,"lost":..,"attached":..,"attach_ms":..}
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* gadget-run's drain timer (TICK_MS of the shared poller, src/ebpf/poller.ts): the BPF side only
 * forces a wakeup past 256 KiB unread. */
#define POLL_MS 10
#define MAX_LINKS 16

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_event(void *ctx, void *data, size_t size)
{
	(void)data;
	(void)size;
	(*(unsigned long long *)ctx)++;
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "open_consumer: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* libbpf names data maps "<object prefix>.rodata"; find them by suffix. */
static struct bpf_map *map_by_suffix(struct bpf_object *obj, const char *suffix)
{
	struct bpf_map *map;
	size_t n = strlen(suffix);

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		size_t len = strlen(name);
		if (len >= n && !strcmp(name + len - n, suffix))
			return map;
	}
	fprintf(stderr, "open_consumer: no %s map\n", suffix);
	exit(1);
}

/* Offset of a global in its data section, from the object's BTF datasec. */
static __u32 var_offset(struct bpf_object *obj, const char *section, const char *var)
{
	struct btf *btf = bpf_object__btf(obj);
	int id = btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC);
	if (id < 0)
		die(section, id);
	const struct btf_type *sec = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *vsi = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vsi++) {
		const struct btf_type *t = btf__type_by_id(btf, vsi->type);
		if (!strcmp(btf__name_by_offset(btf, t->name_off), var))
			return vsi->offset;
	}
	fprintf(stderr, "open_consumer: no %s in %s\n", var, section);
	exit(1);
}

/* Leave out programs whose tracepoint this kernel lacks (sys_enter_open on
 * arm64), as gadget-run does, so attach-all cannot fail on them. */
static void skip_missing_tracepoints(struct bpf_object *obj)
{
	struct bpf_program *prog;
	char path[256];

	bpf_object__for_each_program(prog, obj) {
		const char *sec = bpf_program__section_name(prog);
		if (strncmp(sec, "tracepoint/", 11))
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s", sec + 11);
		if (access(path, F_OK))
			bpf_program__set_autoload(prog, false);
	}
}

int main(int argc, char **argv)
{
	double t0 = now_ms();
	if (argc < 3) {
		fprintf(stderr, "usage: %s OBJECT COMM [RING_BYTES]\n", argv[0]);
		return 2;
	}
	const char *file = argv[1], *comm = argv[2];
	__u32 ring_bytes = argc > 3 ? strtoul(argv[3], NULL, 0) : 16 << 20;

	struct bpf_object *obj = bpf_object__open_file(file, NULL);
	if (!obj)
		die(file, errno);

	/* libbpf 1.1 hands out the initial value as const: copy, edit, set back */
	size_t size;
	struct bpf_map *rodata = map_by_suffix(obj, ".rodata");
	const void *initial = bpf_map__initial_value(rodata, &size);
	__u32 at = var_offset(obj, ".rodata", "targ_comm");
	if (!initial || at + 16 > size || strlen(comm) > 15)
		die("targ_comm", EINVAL);
	char *consts = malloc(size);
	memcpy(consts, initial, size);
	memset(consts + at, 0, 16);
	memcpy(consts + at, comm, strlen(comm));
	int err = bpf_map__set_initial_value(rodata, consts, size);
	free(consts);
	if (err)
		die("set .rodata", err);

	struct bpf_map *events = bpf_object__find_map_by_name(obj, "events");
	if (!events)
		die("events map", ENOENT);
	err = bpf_map__set_max_entries(events, ring_bytes);
	if (err)
		die("resize events", err);

	skip_missing_tracepoints(obj);
	err = bpf_object__load(obj);
	if (err)
		die("load", err);

	struct bpf_link *links[MAX_LINKS];
	int nlinks = 0;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog))
			continue;
		if (nlinks == MAX_LINKS)
			die("too many programs", E2BIG);
		links[nlinks] = bpf_program__attach(prog);
		if (!links[nlinks])
			die(bpf_program__name(prog), errno);
		nlinks++;
	}

	unsigned long long count = 0;
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(events), on_event, &count, NULL);
	if (!rb)
		die("ring_buffer__new", errno);

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int attached = nlinks;
	double attach_ms = now_ms() - t0;
	fprintf(stderr, "ready %.3f\n", attach_ms);

	/* The shape of gadget-run's drain loop (src/steps/modes/stream.ts): consume what
	 * is there, and only when nothing was, wait in epoll for a wakeup or the
	 * timer. libbpf consumes record by record, releasing each at once, so the
	 * unread data rarely reaches the BPF side's wakeup threshold. */
	while (!stop) {
		if (ring_buffer__consume(rb) == 0)
			ring_buffer__poll(rb, POLL_MS);
	}

	/* detach first so nothing lands after the final drain */
	while (nlinks)
		bpf_link__destroy(links[--nlinks]);
	ring_buffer__consume(rb);

	struct bpf_map *bss = map_by_suffix(obj, ".bss");
	__u32 key = 0, bss_size = bpf_map__value_size(bss);
	char *bss_value = calloc(1, bss_size);
	__u64 lost = 0;
	if (bpf_map_lookup_elem(bpf_map__fd(bss), &key, bss_value))
		die("read .bss", errno);
	memcpy(&lost, bss_value + var_offset(obj, ".bss", "gadget_lost"), sizeof(lost));

	printf("{\"events\":%llu,\"lost\":%llu,\"attached\":%d,\"attach_ms\":%.3f}\n",
	       count, (unsigned long long)lost, attached, attach_ms);
	free(bss_value);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
