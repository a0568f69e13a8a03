import { field, TASK_KERNEL_FILTERS } from './common-fields.ts';
import type { GadgetDefinition } from './types.ts';

export const traceOpen = {
  id: 'trace/open',
  description: 'Trace open, openat and openat2: who opens which path, with flags, mode and result',
  mode: 'stream',
  object: 'trace_open.bpf.o',
  struct: 'open_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.uid, field.gid, field.comm,
    { name: 'path', type: 'string', description: 'path as passed to the syscall (255 bytes at most)' },
    { name: 'flags', type: 'number', description: 'open flags (O_*)' },
    { name: 'mode', type: 'number', description: 'mode for created files' },
    { name: 'ret', type: 'number', description: 'the file descriptor, or the negative errno' },
    { name: 'fd', type: 'number', decode: 'compute', compute: 'f.ret >= 0 ? f.ret : -1', description: 'the file descriptor, -1 on error' },
    { name: 'err', type: 'number', decode: 'compute', compute: 'f.ret < 0 ? -f.ret : 0', description: 'errno, 0 on success' },
    field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [
    // open(2) does not exist on arm64; openat2 needs Linux 5.6
    { tracepoint: 'syscalls/sys_enter_openat' },
    { tracepoint: 'syscalls/sys_exit_openat' },
    { tracepoint: 'syscalls/sys_enter_open', optional: true },
    { tracepoint: 'syscalls/sys_exit_open', optional: true },
    { tracepoint: 'syscalls/sys_enter_openat2', optional: true },
    { tracepoint: 'syscalls/sys_exit_openat2', optional: true },
  ],
} satisfies GadgetDefinition;
