import type { FieldSpec } from './types.ts';

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

/** Equality filters bpf/include/gadget.h checks in the kernel, for gadgets that filter on the current task. */
export const TASK_KERNEL_FILTERS = ['pid', 'tid', 'uid', 'gid', 'comm', 'mntns_id'] as const;
