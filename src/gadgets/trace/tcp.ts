import { field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { CONNECT_HOOKS, errNameOfRet, netField } from '../net-common.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** bpf/trace_tcp.h TCP_OP_* */
const OPERATIONS: Readonly<Record<number, string>> = { 1: 'connect', 2: 'accept', 3: 'close' };

export const traceTcp = {
  id: 'trace/tcp',
  description:
    'Trace TCP connects, accepts and closes with addresses and ports. The task is the one that connected or accepted the socket ' +
    '(state changes run in softirq); a close is the move to TCP_CLOSE of a connection. Connections made before the gadget started are not seen. ' +
    'Hooks: syscalls connect/accept4/accept, sock/inet_sock_set_state (Linux 4.16+)',
  mode: 'stream',
  liveness: { canary: ['net'] },
  object: 'trace_tcp.bpf.o',
  struct: 'tcp_event',
  fields: [
    field.timestamp,
    { name: 'operation', member: 'op', type: 'string', decode: 'enum', names: OPERATIONS, description: 'connect (completed or failed), accept, or close (the connection is gone)' },
    { ...field.pid, description: 'process that connected or accepted the socket' },
    { ...field.tid, description: 'its thread' },
    field.uid, field.gid,
    { ...field.comm, description: 'its command name' },
    netField.ipversion, netField.saddr, netField.daddr, netField.sport, netField.dport,
    { name: 'ret', type: 'number', description: 'connect: 0 or -errno (ECONNREFUSED, ETIMEDOUT); accept: the new fd; close: 0' },
    errNameOfRet,
    field.mntns_id, field.cgroup_id,
  ],
  // filters decide at connect/accept which sockets are followed
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [
    ...CONNECT_HOOKS,
    { tracepoint: 'syscalls/sys_exit_accept4' },
    { tracepoint: 'syscalls/sys_exit_accept', optional: true },
  ],
} satisfies GadgetDefinition;
