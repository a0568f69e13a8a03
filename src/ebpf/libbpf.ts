/**
 * koffi declarations of the libbpf 1.1 API (Debian 12's libbpf1) and the few
 * libc calls the ring buffer and iterators need. This file and its siblings
 * in src/ebpf are the only importers of koffi.
 */
import { createRequire } from 'node:module';
import { mark } from '../timing.ts';

type Koffi = typeof import('koffi').default;
let koffiModule: Koffi | undefined;

/**
 * koffi, required when first used rather than imported: `validate` and
 * `gadgets` never pay for it, and require() of its CommonJS entry is about
 * half of what the ESM import costs (two more modules through the ESM loader).
 */
export function koffi(): Koffi {
  koffiModule ??= createRequire(import.meta.url)('koffi') as Koffi;
  return koffiModule;
}

const LIBBPF_CANDIDATES = ['libbpf.so.1', '/usr/lib/x86_64-linux-gnu/libbpf.so.1', '/usr/lib/aarch64-linux-gnu/libbpf.so.1'];

function loadLibbpf(): ReturnType<Koffi['load']> {
  const failures: string[] = [];
  for (const name of LIBBPF_CANDIDATES) {
    try {
      return koffi().load(name);
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  throw new Error(
    `libbpf.so.1 not found — install Debian's libbpf1 package (apt-get install libbpf1)\n  ${failures.join('\n  ')}`,
  );
}

let cached: ReturnType<typeof declare> | undefined;

/** The bound libbpf and libc functions, loaded on first use so that parsing and validation work without libbpf. */
export function native() {
  if (!cached) {
    cached = declare();
    mark('libbpf bound');
  }
  return cached;
}

export type Pointer = unknown;

function declare() {
  const k = koffi();
  const bpf = loadLibbpf();
  const libc = k.load('libc.so.6');

  k.opaque('bpf_object');
  k.opaque('bpf_program');
  k.opaque('bpf_map');
  k.opaque('bpf_link');
  k.opaque('btf');
  const printFn = k.proto('int libbpf_print_fn(int level, const void *fmt, void *ap)');
  // libbpf 1.1's layout (libbpf.h); sz tells libbpf which fields we know
  const openOpts = k.struct('bpf_object_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
    removed_attach_prog_fd: 'uint32_t',
    kconfig: 'const char *',
    btf_custom_path: 'const char *',
    kernel_log_buf: 'void *',
    kernel_log_size: 'size_t',
    kernel_log_level: 'uint32_t',
  });

  return {
    printFn,
    openOptsSize: k.sizeof(openOpts),
    libbpf_set_print: bpf.func('void *libbpf_set_print(libbpf_print_fn *fn)'),
    libbpf_major_version: bpf.func('uint32_t libbpf_major_version(void)'),
    libbpf_minor_version: bpf.func('uint32_t libbpf_minor_version(void)'),
    libbpf_probe_bpf_map_type: bpf.func('int libbpf_probe_bpf_map_type(int map_type, const void *opts)'),
    libbpf_probe_bpf_prog_type: bpf.func('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),

    bpf_object__open_file: bpf.func('bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)'),
    bpf_object__load: bpf.func('int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: bpf.func('void bpf_object__close(bpf_object *obj)'),
    bpf_object__btf: bpf.func('btf *bpf_object__btf(const bpf_object *obj)'),
    bpf_object__next_program: bpf.func('bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prog)'),
    bpf_object__next_map: bpf.func('bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *map)'),

    bpf_program__name: bpf.func('const char *bpf_program__name(const bpf_program *prog)'),
    bpf_program__section_name: bpf.func('const char *bpf_program__section_name(const bpf_program *prog)'),
    bpf_program__set_autoload: bpf.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    bpf_program__autoload: bpf.func('bool bpf_program__autoload(const bpf_program *prog)'),
    bpf_program__attach: bpf.func('bpf_link *bpf_program__attach(const bpf_program *prog)'),
    bpf_program__attach_iter: bpf.func('bpf_link *bpf_program__attach_iter(const bpf_program *prog, const void *opts)'),
    bpf_program__attach_perf_event: bpf.func('bpf_link *bpf_program__attach_perf_event(const bpf_program *prog, int pfd)'),
    bpf_program__attach_cgroup: bpf.func('bpf_link *bpf_program__attach_cgroup(const bpf_program *prog, int cgroup_fd)'),
    bpf_program__fd: bpf.func('int bpf_program__fd(const bpf_program *prog)'),
    bpf_link__fd: bpf.func('int bpf_link__fd(const bpf_link *link)'),
    bpf_link__destroy: bpf.func('int bpf_link__destroy(bpf_link *link)'),
    bpf_iter_create: bpf.func('int bpf_iter_create(int link_fd)'),

    bpf_map__name: bpf.func('const char *bpf_map__name(const bpf_map *map)'),
    bpf_map__fd: bpf.func('int bpf_map__fd(const bpf_map *map)'),
    bpf_map__set_max_entries: bpf.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
    bpf_map__max_entries: bpf.func('uint32_t bpf_map__max_entries(const bpf_map *map)'),
    bpf_map__value_size: bpf.func('uint32_t bpf_map__value_size(const bpf_map *map)'),
    bpf_map__initial_value: bpf.func('void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),
    bpf_map__key_size: bpf.func('uint32_t bpf_map__key_size(const bpf_map *map)'),
    bpf_map_lookup_elem: bpf.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    // maps read and cleared from user space (map.ts)
    bpf_map__type: bpf.func('int bpf_map__type(const bpf_map *map)'),
    bpf_map_create: bpf.func('int bpf_map_create(int map_type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)'),
    bpf_map_update_elem: bpf.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_delete_elem: bpf.func('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_get_next_key: bpf.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    bpf_map_lookup_and_delete_batch: bpf.func('int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const void *opts)'),
    libbpf_num_possible_cpus: bpf.func('int libbpf_num_possible_cpus(void)'),

    btf__raw_data: bpf.func('const void *btf__raw_data(const btf *btf, _Out_ uint32_t *size)'),
    btf__parse_elf: bpf.func('btf *btf__parse_elf(const char *path, void *ext)'),
    btf__free: bpf.func('void btf__free(btf *btf)'),

    vsnprintf: libc.func('int vsnprintf(void *buf, size_t size, const void *fmt, void *ap)'),
    mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
    munmap: libc.func('int munmap(void *addr, size_t length)'),
    read: libc.func('long read(int fd, void *buf, size_t count)'),
    write: libc.func('long write(int fd, const void *buf, size_t count)'),
    close: libc.func('int close(int fd)'),
    epoll_create1: libc.func('int epoll_create1(int flags)'),
    epoll_ctl: libc.func('int epoll_ctl(int epfd, int op, int fd, const void *event)'),
    epoll_wait: libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
    eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
    clock_gettime: libc.func('int clock_gettime(int clk, void *ts)'),
    getpagesize: libc.func('int getpagesize(void)'),
    socket: libc.func('int socket(int domain, int type, int protocol)'),
    setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t length)'),
    bind: libc.func('int bind(int fd, const void *addr, uint32_t length)'),
    setns: libc.func('int setns(int fd, int nstype)'),
    // variadic: perf_event_open has no libc wrapper
    syscall: libc.func('long syscall(long number, ...)'),
  };
}

export function errno(): number {
  return koffi().errno();
}

export function isNull(ptr: Pointer): boolean {
  return ptr === null || ptr === undefined || koffi().address(ptr as never) === 0n;
}

/** An ArrayBuffer over native memory (no copy). */
export function view(ptr: Pointer, length: number): ArrayBuffer {
  return koffi().view(ptr as never, length) as ArrayBuffer;
}
