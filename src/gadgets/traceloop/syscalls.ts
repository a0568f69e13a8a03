/**
 * What traceloop knows of each syscall's arguments (x86-64): their kinds, so
 * a recorded slot's six raw registers become strace's arguments, and which
 * one is a path the kernel side reads at sys_enter. Syscalls not listed are
 * shown with all six raw arguments, as numbers.
 */
import { syscallNumber } from '../../steps/names/index.ts';

/**
 * fd: a descriptor or dirfd (AT_FDCWD); int: a C int; uint: unsigned int;
 * long: a signed 64-bit count or offset; size: size_t; ptr: an address;
 * path: a NUL-terminated path; oflags: open(2) flags; mode: file mode (octal);
 * sig: a signal number.
 */
export type ArgKind = 'fd' | 'int' | 'uint' | 'long' | 'size' | 'ptr' | 'path' | 'oflags' | 'mode' | 'sig';

const A: Record<string, ArgKind[]> = {
  read: ['fd', 'ptr', 'size'], write: ['fd', 'ptr', 'size'], open: ['path', 'oflags', 'mode'], close: ['fd'],
  stat: ['path', 'ptr'], fstat: ['fd', 'ptr'], lstat: ['path', 'ptr'], poll: ['ptr', 'uint', 'int'],
  lseek: ['fd', 'long', 'int'], mmap: ['ptr', 'size', 'int', 'int', 'fd', 'long'], mprotect: ['ptr', 'size', 'int'],
  munmap: ['ptr', 'size'], brk: ['ptr'], rt_sigaction: ['sig', 'ptr', 'ptr', 'size'], rt_sigprocmask: ['int', 'ptr', 'ptr', 'size'],
  rt_sigreturn: [], ioctl: ['fd', 'uint', 'ptr'], pread64: ['fd', 'ptr', 'size', 'long'], pwrite64: ['fd', 'ptr', 'size', 'long'],
  readv: ['fd', 'ptr', 'int'], writev: ['fd', 'ptr', 'int'], access: ['path', 'int'], pipe: ['ptr'], pipe2: ['ptr', 'oflags'],
  sched_yield: [], dup: ['fd'], dup2: ['fd', 'fd'], dup3: ['fd', 'fd', 'oflags'], pause: [], nanosleep: ['ptr', 'ptr'],
  getpid: [], getppid: [], gettid: [], getuid: [], geteuid: [], getgid: [], getegid: [], getpgrp: [], setsid: [],
  socket: ['int', 'int', 'int'], connect: ['fd', 'ptr', 'int'], accept: ['fd', 'ptr', 'ptr'], bind: ['fd', 'ptr', 'int'],
  listen: ['fd', 'int'], sendto: ['fd', 'ptr', 'size', 'int', 'ptr', 'int'], recvfrom: ['fd', 'ptr', 'size', 'int', 'ptr', 'ptr'],
  clone: ['ptr', 'ptr', 'ptr', 'ptr', 'ptr'], clone3: ['ptr', 'size'], fork: [], vfork: [],
  execve: ['path', 'ptr', 'ptr'], execveat: ['fd', 'path', 'ptr', 'ptr', 'int'], exit: ['int'], exit_group: ['int'],
  wait4: ['int', 'ptr', 'int', 'ptr'], kill: ['int', 'sig'], tkill: ['int', 'sig'], tgkill: ['int', 'int', 'sig'],
  fcntl: ['fd', 'int', 'long'], flock: ['fd', 'int'], fsync: ['fd'], fdatasync: ['fd'], truncate: ['path', 'long'],
  ftruncate: ['fd', 'long'], getdents64: ['fd', 'ptr', 'size'], getcwd: ['ptr', 'size'], chdir: ['path'], fchdir: ['fd'],
  rename: ['path', 'path'], mkdir: ['path', 'mode'], rmdir: ['path'], creat: ['path', 'mode'], link: ['path', 'path'],
  unlink: ['path'], symlink: ['path', 'path'], readlink: ['path', 'ptr', 'size'], chmod: ['path', 'mode'], fchmod: ['fd', 'mode'],
  chown: ['path', 'int', 'int'], fchown: ['fd', 'int', 'int'], lchown: ['path', 'int', 'int'], umask: ['mode'],
  statfs: ['path', 'ptr'], fstatfs: ['fd', 'ptr'], chroot: ['path'], mknod: ['path', 'mode', 'uint'],
  arch_prctl: ['int', 'ptr'], prctl: ['int', 'long', 'long', 'long', 'long'], set_tid_address: ['ptr'],
  futex: ['ptr', 'int', 'int', 'ptr', 'ptr', 'int'], set_robust_list: ['ptr', 'size'], rseq: ['ptr', 'uint', 'int', 'uint'],
  prlimit64: ['int', 'int', 'ptr', 'ptr'], getrandom: ['ptr', 'size', 'uint'], clock_gettime: ['int', 'ptr'],
  clock_nanosleep: ['int', 'int', 'ptr', 'ptr'], epoll_wait: ['fd', 'ptr', 'int', 'int'], epoll_pwait: ['fd', 'ptr', 'int', 'int', 'ptr', 'size'],
  openat: ['fd', 'path', 'oflags', 'mode'], openat2: ['fd', 'path', 'ptr', 'size'], mkdirat: ['fd', 'path', 'mode'],
  mknodat: ['fd', 'path', 'mode', 'uint'], fchownat: ['fd', 'path', 'int', 'int', 'int'], newfstatat: ['fd', 'path', 'ptr', 'int'],
  unlinkat: ['fd', 'path', 'int'], renameat: ['fd', 'path', 'fd', 'path'], renameat2: ['fd', 'path', 'fd', 'path', 'uint'],
  linkat: ['fd', 'path', 'fd', 'path', 'int'], symlinkat: ['path', 'fd', 'path'], readlinkat: ['fd', 'path', 'ptr', 'size'],
  fchmodat: ['fd', 'path', 'mode'], fchmodat2: ['fd', 'path', 'mode', 'int'], faccessat: ['fd', 'path', 'int'],
  faccessat2: ['fd', 'path', 'int', 'int'], utimensat: ['fd', 'path', 'ptr', 'int'], statx: ['fd', 'path', 'int', 'uint', 'ptr'],
};

export { syscallNumber };

/** The argument kinds of syscall `name`; undefined when unknown (all six shown raw). */
export const argKinds = (name: string): readonly ArgKind[] | undefined => (Object.hasOwn(A, name) ? A[name] : undefined);

/** Syscalls that return an address, shown in hex. */
export const RETURNS_ADDRESS: ReadonlySet<string> = new Set(['mmap', 'mremap', 'brk', 'shmat']);

/**
 * traceloop's targ_path_arg: per syscall number, 1 + the index of the first
 * path argument (the kernel side keeps one path per syscall), 0 for none.
 */
export function pathArgTable(size: number): number[] {
  const table = new Array<number>(size).fill(0);
  for (const [name, kinds] of Object.entries(A)) {
    const nr = syscallNumber(name);
    const at = kinds.indexOf('path');
    if (nr !== undefined && nr < size && at >= 0) table[nr] = at + 1;
  }
  return table;
}
