import { field, kernelFiltersExcept, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

export const traceExec = {
  id: 'trace/exec',
  description: 'Trace new processes: every execve/execveat with its arguments (first 4 KiB) and result',
  mode: 'stream',
  liveness: { canary: ['exec'] },
  object: 'trace_exec.bpf.o',
  struct: 'exec_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.ppid, field.uid, field.gid,
    { ...field.comm, description: 'command name after the exec' },
    field.pcomm,
    { name: 'ret', type: 'number', description: '0, or the negative errno of a failed exec' },
    { name: 'args', type: 'string[]', decode: 'cstrings', length: 'args_size', description: 'argv, the first 4 KiB' },
    { name: 'args_truncated', type: 'boolean', decode: 'bool', description: 'true when arguments were cut to fit 4 KiB (or, for a failed exec, past 128 arguments)' },
    field.mntns_id, field.cgroup_id,
  ],
  // comm is not filtered in the kernel: the program sees the pre-exec comm at entry
  kernelFilters: kernelFiltersExcept(TASK_KERNEL_FILTERS, 'comm'),
  requires: [
    { tracepoint: 'syscalls/sys_enter_execve' },
    { tracepoint: 'syscalls/sys_exit_execve' },
    { tracepoint: 'syscalls/sys_enter_execveat', optional: true },
    { tracepoint: 'syscalls/sys_exit_execveat', optional: true },
  ],
} satisfies GadgetDefinition;
