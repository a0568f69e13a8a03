import { field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { CONNECT_HOOKS, errNameOfRet, netField } from '../net-common.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

export const traceTcpconnect = {
  id: 'trace/tcpconnect',
  description:
    'Trace active TCP connects with their latency: connect() entry to ESTABLISHED, or to the failure. ' +
    'Hooks: syscalls connect, sock/inet_sock_set_state (Linux 4.16+)',
  mode: 'stream',
  liveness: { canary: ['net'] },
  object: 'trace_tcpconnect.bpf.o',
  struct: 'tcpconnect_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.uid, field.gid, field.comm,
    netField.ipversion, netField.saddr, netField.daddr, netField.sport, netField.dport,
    { name: 'ret', type: 'number', description: '0, or -errno (ECONNREFUSED, ETIMEDOUT, ...)' },
    errNameOfRet,
    { name: 'latency', type: 'number', description: 'ns from connect() entry to ESTABLISHED (or to the failure)' },
    field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: CONNECT_HOOKS,
} satisfies GadgetDefinition;
