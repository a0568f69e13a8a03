// From /usr/include/linux/mount.h (MOVE_MOUNT_BENEATH: Linux 6.5, newer than its header) and <sys/mount.h>
// (umount2's flags); short tables, written out.
/** umount2(2) flags → names. */
export const UMOUNT_FLAGS: Readonly<Record<number, string>> = {
  0x1: 'MNT_FORCE', 0x2: 'MNT_DETACH', 0x4: 'MNT_EXPIRE', 0x8: 'UMOUNT_NOFOLLOW',
};
/** fsopen(2) flags → names. */
export const FSOPEN_FLAGS: Readonly<Record<number, string>> = { 0x1: 'FSOPEN_CLOEXEC' };
/** fsconfig(2) commands → names. */
export const FSCONFIG_CMDS: Readonly<Record<number, string>> = {
  0: 'FSCONFIG_SET_FLAG', 1: 'FSCONFIG_SET_STRING', 2: 'FSCONFIG_SET_BINARY', 3: 'FSCONFIG_SET_PATH',
  4: 'FSCONFIG_SET_PATH_EMPTY', 5: 'FSCONFIG_SET_FD', 6: 'FSCONFIG_CMD_CREATE', 7: 'FSCONFIG_CMD_RECONFIGURE',
  8: 'FSCONFIG_CMD_CREATE_EXCL',
};
/** fsmount(2) attr_flags → MOUNT_ATTR_* names (0 is the default atime mode, relatime). */
export const MOUNT_ATTR_FLAGS: Readonly<Record<number, string>> = {
  0x1: 'MOUNT_ATTR_RDONLY', 0x2: 'MOUNT_ATTR_NOSUID', 0x4: 'MOUNT_ATTR_NODEV', 0x8: 'MOUNT_ATTR_NOEXEC',
  0x10: 'MOUNT_ATTR_NOATIME', 0x20: 'MOUNT_ATTR_STRICTATIME', 0x80: 'MOUNT_ATTR_NODIRATIME',
  0x100000: 'MOUNT_ATTR_IDMAP', 0x200000: 'MOUNT_ATTR_NOSYMFOLLOW',
};
/** move_mount(2) flags → names. */
export const MOVE_MOUNT_FLAGS: Readonly<Record<number, string>> = {
  0x1: 'MOVE_MOUNT_F_SYMLINKS', 0x2: 'MOVE_MOUNT_F_AUTOMOUNTS', 0x4: 'MOVE_MOUNT_F_EMPTY_PATH',
  0x10: 'MOVE_MOUNT_T_SYMLINKS', 0x20: 'MOVE_MOUNT_T_AUTOMOUNTS', 0x40: 'MOVE_MOUNT_T_EMPTY_PATH',
  0x100: 'MOVE_MOUNT_SET_GROUP', 0x200: 'MOVE_MOUNT_BENEATH',
};
