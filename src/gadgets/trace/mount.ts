import { field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { ERRNO, flagNames, flagNamesMaxLength, longestName, MOUNT_FLAGS } from '../../steps/names/index.ts';
import { FSCONFIG_CMDS, FSOPEN_FLAGS, MOUNT_ATTR_FLAGS, MOVE_MOUNT_FLAGS, UMOUNT_FLAGS } from '../../steps/names/mount-ops.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** enum mount_op in bpf/trace_mount.h */
const OPERATIONS: Readonly<Record<number, string>> = { 0: 'mount', 1: 'umount', 2: 'fsopen', 3: 'fsconfig', 4: 'fsmount', 5: 'move_mount' };

/** Each operation's flags word and its names (fsconfig's is a command, not bits). */
const FLAG_TABLES: Record<string, Readonly<Record<number, string>>> = {
  mount: MOUNT_FLAGS, umount: UMOUNT_FLAGS, fsopen: FSOPEN_FLAGS, fsmount: MOUNT_ATTR_FLAGS, move_mount: MOVE_MOUNT_FLAGS,
};

/** MS_MGC_VAL in the top 16 bits is the pre-2.4 magic the kernel strips (fs/namespace.c). */
const MS_MGC_MSK = 0xffff0000;
const MS_MGC_VAL = 0xc0ed0000;

export function mountFlagNames(operation: string, flags: number): string {
  if (operation === 'fsconfig') return FSCONFIG_CMDS[flags] ?? String(flags);
  const names = FLAG_TABLES[operation];
  if (!names) return String(flags);
  if (operation === 'mount' && (flags & MS_MGC_MSK) >>> 0 === MS_MGC_VAL) flags &= ~MS_MGC_MSK;
  return flagNames(flags, names);
}

const FLAG_NAMES_MAX_BYTES = 2 + Math.max(
  longestName(FSCONFIG_CMDS), 20, // 20: a u64 as digits
  ...Object.values(FLAG_TABLES).map((t) => flagNamesMaxLength(t, 32)),
);
const ERR_NAME_MAX_BYTES = 2 + Math.max(longestName(ERRNO), 10);

export const traceMount = {
  id: 'trace/mount',
  description:
    'Trace mount(2), umount2(2) and the new mount API (fsopen, fsconfig, fsmount, move_mount): who mounts or unmounts ' +
    'what, where, with which flags and options, the result and the latency. Hooks: the syscalls tracepoints (Linux 5.8+; ' +
    'the new-API ones from 5.2, optional). The strings are as passed (a relative target stays relative), at most ' +
    '255 bytes (fs 63). Per operation: mount fills fs, source, target, flags (MS_*), data; umount target, flags (MNT_*); ' +
    'fsopen fs, flags; fsconfig flags = the command (FSCONFIG_*), data = "key=value" (source too when key is "source"); ' +
    'fsmount flags = attr_flags (MOUNT_ATTR_*); move_mount source = from path, target = to path, flags (MOVE_MOUNT_*).',
  mode: 'stream',
  liveness: { canary: ['mount'] },
  object: 'trace_mount.bpf.o',
  struct: 'mount_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.uid, field.gid, field.comm,
    {
      name: 'operation', type: 'string', member: 'op', decode: 'enum', names: OPERATIONS,
      description: 'mount, umount, fsopen, fsconfig, fsmount or move_mount',
    },
    { name: 'fs', type: 'string', description: 'filesystem type (mount, fsopen)' },
    { name: 'source', type: 'string', description: 'what is mounted: device, path or name (mount; fsconfig "source"; move_mount from path)' },
    { name: 'target', type: 'string', description: 'mount point (mount, umount; move_mount to path)' },
    { name: 'flags', type: 'number', description: 'the operation\'s flags word, as a number (see flag_names)' },
    {
      name: 'flag_names', type: 'string', decode: 'derive',
      derive: { from: ['operation', 'flags'], fn: mountFlagNames, maxBytes: FLAG_NAMES_MAX_BYTES },
      description: 'flags by name, \'|\'-joined: MS_* for mount, MNT_* for umount, FSOPEN_*, FSCONFIG_* (the command), MOUNT_ATTR_* for fsmount, MOVE_MOUNT_*',
    },
    { name: 'data', type: 'string', description: 'mount options (mount\'s data, 255 bytes at most), or fsconfig\'s "key=value"' },
    { name: 'ret', type: 'number', description: '0 (fsopen, fsmount: the new fd), or the negative errno' },
    {
      name: 'err_name', type: 'string', decode: 'derive',
      derive: { from: ['ret'], fn: (ret: number) => (ret < 0 ? ERRNO[-ret] ?? String(-ret) : ''), maxBytes: ERR_NAME_MAX_BYTES },
      description: 'the errno\'s name (ENOENT, ENODEV, EPERM, ...), "" on success',
    },
    { name: 'latency', type: 'number', description: 'ns from syscall entry to exit' },
    field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [
    { tracepoint: 'syscalls/sys_enter_mount' },
    { tracepoint: 'syscalls/sys_exit_mount' },
    // umount2(2) is SYSCALL_DEFINE2(umount, ...) in the kernel
    { tracepoint: 'syscalls/sys_enter_umount' },
    { tracepoint: 'syscalls/sys_exit_umount' },
    { tracepoint: 'syscalls/sys_enter_fsopen', optional: true },
    { tracepoint: 'syscalls/sys_exit_fsopen', optional: true },
    { tracepoint: 'syscalls/sys_enter_fsconfig', optional: true },
    { tracepoint: 'syscalls/sys_exit_fsconfig', optional: true },
    { tracepoint: 'syscalls/sys_enter_fsmount', optional: true },
    { tracepoint: 'syscalls/sys_exit_fsmount', optional: true },
    { tracepoint: 'syscalls/sys_enter_move_mount', optional: true },
    { tracepoint: 'syscalls/sys_exit_move_mount', optional: true },
  ],
} satisfies GadgetDefinition;
