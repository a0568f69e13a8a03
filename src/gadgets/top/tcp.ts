import { field, kernelFiltersExcept, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { intervalFields } from '../../steps/modes/interval.ts';
import { netField } from '../net-common.ts';
import type { FieldSpec, GadgetDefinition } from '../../steps/types.ts';

/** IP version → the AF_* the kernel constant targ_family compares with */
const AF_OF_VERSION: Readonly<Record<number, number>> = { 4: 2, 6: 10 };

export const topTcp = {
  id: 'top/tcp',
  description:
    'Bytes sent and received per process and TCP connection (IG top tcp), every interval, busiest first, counted in the ' +
    'sending or receiving task. Hooks, the first this kernel has: tp_btf sock/sock_send_length and sock/sock_recv_length ' +
    '(Linux 6.3+), fexit on tcp_sendmsg and tcp_recvmsg, or kprobes and kretprobes on them; the same bytes from each ' +
    '(sendfile and splice to a socket are not seen before 6.5)',
  mode: 'interval',
  liveness: { canary: ['net'] },
  object: 'top_tcp.bpf.o',
  struct: 'top_tcp_stats',
  interval: { map: 'stats', key: 'top_tcp_key', value: 'top_tcp_stats', sort: '-sent,-received' },
  fields: [
    field.pid, field.comm,
    netField.ipversion, netField.saddr, netField.daddr, netField.sport, netField.dport,
    { name: 'sent', type: 'number', description: 'bytes the process sent on the connection in the interval' },
    { name: 'received', type: 'number', description: 'bytes the process received on the connection in the interval (peeks not counted)' },
    field.mntns_id, field.cgroup_id,
    ...intervalFields,
  ] satisfies FieldSpec[],
  // the hooks run in the task that sends or receives; tid, uid and gid are not in the rows
  kernelFilters: kernelFiltersExcept(TASK_KERNEL_FILTERS, 'tid', 'uid', 'gid'),
  requires: [],
  variants: [
    {
      name: 'tp_btf sock/sock_send_length and sock/sock_recv_length',
      requires: [{ tracepoint: 'sock/sock_send_length' }, { tracepoint: 'sock/sock_recv_length' }],
      programs: ['top_tcp_send', 'top_tcp_recv'],
    },
    {
      name: 'fexit tcp_sendmsg and tcp_recvmsg',
      requires: [{ fentry: 'tcp_sendmsg' }, { fentry: 'tcp_recvmsg' }],
      programs: ['top_tcp_sendmsg_fexit', 'top_tcp_recvmsg_fexit'],
    },
    {
      name: 'kprobe tcp_sendmsg and tcp_recvmsg',
      requires: [{ kprobe: 'tcp_sendmsg' }, { kprobe: 'tcp_recvmsg' }],
      programs: ['top_tcp_sendmsg_entry', 'top_tcp_sendmsg_return', 'top_tcp_recvmsg_entry', 'top_tcp_recvmsg_return'],
    },
  ],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      family: { enum: [4, 6], description: 'only IPv4 (4) or IPv6 (6) connections, checked in the kernel (IG -f/--family); default both' },
      pid: { type: 'integer', minimum: 1, description: 'only this process, checked in the kernel (IG -p/--pid; the same as the filter pid==N)' },
    },
  },
  constants: (params) => ({
    targ_family: params.family === undefined ? 0 : AF_OF_VERSION[params.family as number],
    ...(params.pid === undefined ? {} : { targ_tgid: params.pid as number }),
  }),
} satisfies GadgetDefinition;
