import { field, kernelFiltersExcept, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { intervalFields } from '../../steps/modes/interval.ts';
import type { FieldSpec, GadgetDefinition } from '../../steps/types.ts';

const RW_SYSCALLS = ['read', 'write', 'pread64', 'pwrite64', 'readv', 'writev'];

/** the kernel's dev_t (major << 20 | minor) → "major:minor", as ls -l and /proc/PID/mountinfo show it */
export const devName = (dev: number) => `${dev >>> 20}:${dev & 0xfffff}`;

/** R regular, S socket, O other (IG's T column) */
export const FILE_TYPES = { 0: 'R', 1: 'S', 2: 'O' } as const;

export const topFile = {
  id: 'top/file',
  description: 'Reads and writes per process and file (IG top file): counts and bytes every interval, busiest first',
  mode: 'interval',
  liveness: { canary: ['file'] },
  object: 'top_file.bpf.o',
  struct: 'file_stats',
  interval: { map: 'stats', key: 'file_key', value: 'file_stats', sort: '-reads,-writes,-rbytes,-wbytes' },
  fields: [
    field.pid, field.tid, field.comm,
    { name: 'reads', type: 'number', description: 'read calls (read, pread64, readv) that succeeded in the interval' },
    { name: 'writes', type: 'number', description: 'write calls (write, pwrite64, writev) that succeeded in the interval' },
    { name: 'rbytes', type: 'number', description: 'bytes read in the interval' },
    { name: 'wbytes', type: 'number', description: 'bytes written in the interval' },
    { name: 'type', type: 'string', decode: 'enum', names: FILE_TYPES, description: 'R regular file, S socket, O other (pipe, tty, device: with params.all_files)' },
    { name: 'file', type: 'string', description: 'the file\'s name (its last path component, 255 bytes at most)' },
    { name: 'dev_t', type: 'number', member: 'dev', description: 'device of the file system holding the file, as the kernel\'s dev_t (major << 20 | minor)' },
    { name: 'dev', type: 'string', decode: 'derive', derive: { from: ['dev_t'], fn: devName, maxBytes: 2 + 4 + 1 + 7 }, description: 'the same device as major:minor' },
    { name: 'inode', type: 'number', description: 'inode number of the file' },
    field.mntns_id, field.cgroup_id,
    ...intervalFields,
  ] satisfies FieldSpec[],
  // uid and gid are not in the rows: the task filters the program applies, less those
  kernelFilters: kernelFiltersExcept(TASK_KERNEL_FILTERS, 'uid', 'gid'),
  requires: RW_SYSCALLS.flatMap((s) => [{ tracepoint: `syscalls/sys_enter_${s}` }, { tracepoint: `syscalls/sys_exit_${s}` }]),
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      all_files: { type: 'boolean', description: 'include sockets, pipes, ttys and other non-regular files (IG -a/--all-files); default false' },
    },
  },
  constants: (params) => ({ targ_all_files: params.all_files === true }),
} satisfies GadgetDefinition;
