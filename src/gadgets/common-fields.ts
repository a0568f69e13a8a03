import { ERRNO, longestName } from '../steps/names/index.ts';
import type { FieldSpec, KernelFilters } from '../steps/types.ts';

/** Fields that mean the same in every gadget, described once. */
export const field = {
  timestamp: { name: 'timestamp', type: 'string', decode: 'timestamp', description: 'when it happened (RFC 3339, ns)' },
  pid: { name: 'pid', type: 'number', description: 'process id (thread group id)' },
  tid: { name: 'tid', type: 'number', description: 'thread id' },
  ppid: { name: 'ppid', type: 'number', description: 'parent process id' },
  uid: { name: 'uid', type: 'number', description: 'user id' },
  gid: { name: 'gid', type: 'number', description: 'group id' },
  comm: { name: 'comm', type: 'string', description: 'command name (15 bytes at most)' },
  pcomm: { name: 'pcomm', type: 'string', description: "parent's command name" },
  mntns_id: { name: 'mntns_id', type: 'number', description: 'mount namespace inode number' },
  cgroup_id: { name: 'cgroup_id', type: 'number', description: 'cgroup v2 id (inode of its directory)' },
} satisfies Record<string, FieldSpec>;

/**
 * Equality filters bpf/include/filter.h checks in the kernel for gadgets that
 * filter on the current task: field → the .rodata constant (names and sizes
 * as declared there; test/ebpf/btf.test.ts checks them in every object).
 */
export const TASK_KERNEL_FILTERS = {
  pid: { constant: 'targ_tgid', bytes: 4 },
  tid: { constant: 'targ_tid', bytes: 4 },
  // 0 is root: (u32)-1 means "no filter"
  uid: { constant: 'targ_uid', bytes: 4, none: 0xffffffff },
  gid: { constant: 'targ_gid', bytes: 4, none: 0xffffffff },
  comm: { constant: 'targ_comm', bytes: 16 },
  mntns_id: { constant: 'targ_mntns_id', bytes: 8 },
} as const satisfies KernelFilters;

/** A kernel filter table without some of its fields (a gadget whose program cannot check them). */
export function kernelFiltersExcept<T extends KernelFilters, K extends keyof T>(filters: T, ...fields: K[]): Omit<T, K> {
  return Object.fromEntries(Object.entries(filters).filter(([f]) => !fields.includes(f as K))) as Omit<T, K>;
}

/** `err` (errno, 0 on success; filters take names: err==ENOENT) and `err_name`, from a field that is -errno on failure. */
/** The name of an errno, or its number when it has none (up to 20 digits for a 64-bit ret). */
const errnoName = (err: number) => (err ? ERRNO[err] ?? String(err) : '');
const ERRNO_NAME_BYTES = 2 + Math.max(longestName(ERRNO), 20);

/** err_name of a field `ret` that is 0 (or a count) on success and -errno on failure. */
export function errNameOfRet(description = 'the errno\'s name when ret < 0 (ENOENT), "" otherwise', ret = 'ret'): FieldSpec {
  return { name: 'err_name', type: 'string', decode: 'derive', description, derive: { from: [ret], fn: (r: number) => errnoName(r < 0 ? -r : 0), maxBytes: ERRNO_NAME_BYTES } };
}

export function errnoFields(ret = 'ret'): FieldSpec[] {
  return [
    { name: 'err', type: 'number', decode: 'derive', derive: { from: [ret], fn: (r: number) => (r < 0 ? -r : 0) }, names: ERRNO, description: 'errno, 0 on success (filters take names: err==ENOENT)' },
    {
      name: 'err_name', type: 'string', decode: 'derive', description: 'the errno\'s name (ENOENT), "" on success',
      derive: { from: ['err'], fn: (err: number) => (err ? ERRNO[err] ?? String(err) : ''), // unknown values print as their number: up to 20 digits for a 64-bit ret
      maxBytes: 2 + Math.max(longestName(ERRNO), 20) },
    },
  ];
}
