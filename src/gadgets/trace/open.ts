import { errnoFields, field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { flagNames, flagNamesMaxLength, longestName, OPEN_ACCESS_MODES, OPEN_FLAGS } from '../../steps/names/index.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** "O_WRONLY|O_CREAT|O_TRUNC": the access mode (a number in the low two bits), then the flag bits */
export function openFlagNames(flags: number): string {
  const mode = OPEN_ACCESS_MODES[flags & 3] ?? `0x${(flags & 3).toString(16)}`;
  const bits = flagNames(flags & ~3, OPEN_FLAGS);
  return bits ? `${mode}|${bits}` : mode;
}

export const traceOpen = {
  id: 'trace/open',
  description: 'Trace open, openat and openat2: who opens which path, with flags, mode and result',
  mode: 'stream',
  liveness: { canary: ['file'] },
  object: 'trace_open.bpf.o',
  struct: 'open_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.uid, field.gid, field.comm,
    { name: 'path', type: 'string', description: 'path as passed to the syscall (255 bytes at most)' },
    { name: 'flags', type: 'number', description: 'open flags (O_*), as a number' },
    {
      name: 'flag_names', type: 'string', decode: 'derive', description: 'the open flags by name: access mode, then set bits (O_WRONLY|O_CREAT)',
      derive: { from: ['flags'], fn: openFlagNames, maxBytes: 2 + longestName(OPEN_ACCESS_MODES) + 1 + flagNamesMaxLength(OPEN_FLAGS, 32) },
    },
    { name: 'mode', type: 'number', description: 'mode for created files' },
    { name: 'ret', type: 'number', description: 'the file descriptor, or the negative errno' },
    { name: 'fd', type: 'number', decode: 'derive', derive: { from: ['ret'], fn: (ret: number) => (ret >= 0 ? ret : -1) }, description: 'the file descriptor, -1 on error' },
    ...errnoFields(),
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
