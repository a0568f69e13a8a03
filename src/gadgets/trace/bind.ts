import { field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { IP_PROTOCOLS } from '../../steps/names/ip-protocols.ts';
import { errNameOfRet, netField } from '../net-common.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** opts bits, as bpf/trace_bind.h defines BIND_OPT_* */
const BIND_OPTS: Readonly<Record<number, string>> = {
  0x1: 'SO_REUSEADDR',
  0x2: 'SO_REUSEPORT',
  0x4: 'IP_FREEBIND',
  0x8: 'IP_TRANSPARENT',
  0x10: 'IP_BIND_ADDRESS_NO_PORT',
};
/** bpf/trace_bind.h BIND_MAX_PORTS */
const MAX_PORTS = 16;

export const traceBind = {
  id: 'trace/bind',
  description: 'Trace bind(2) of IPv4/IPv6 addresses: who binds which address and port, with the socket\'s protocol and options and the result (syscall tracepoints, Linux 5.8+)',
  mode: 'stream',
  liveness: { canary: ['net'] },
  object: 'trace_bind.bpf.o',
  struct: 'bind_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.uid, field.gid, field.comm,
    { name: 'proto', type: 'string', decode: 'enum', names: IP_PROTOCOLS, description: 'the socket\'s protocol (TCP, UDP, SCTP, ...)' },
    { name: 'addr', type: 'string', decode: 'ipaddr', family: 'family', description: 'the address passed to bind ("0.0.0.0", "::1")' },
    { name: 'port', type: 'number', description: 'the port bound (for a port-0 bind, the one the kernel chose); the requested port when bind failed' },
    netField.ipversion,
    { name: 'ret', type: 'number', description: '0, or the negative errno' },
    errNameOfRet,
    { name: 'bound_dev_if', type: 'number', description: 'interface index the socket is bound to (SO_BINDTODEVICE), 0 for none' },
    { name: 'opts', type: 'string', decode: 'flags', names: BIND_OPTS, description: 'options set on the socket at bind: SO_REUSEADDR, SO_REUSEPORT, IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT, "|"-joined' },
    field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [
    { tracepoint: 'syscalls/sys_enter_bind' },
    { tracepoint: 'syscalls/sys_exit_bind' },
  ],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ports: {
        type: 'array', maxItems: MAX_PORTS, uniqueItems: true, items: { type: 'integer', minimum: 0, maximum: 65535 },
        description: `only binds of these ports (at most ${MAX_PORTS}; checked in the kernel)`,
      },
      ignore_errors: { type: 'boolean', default: false, description: 'only successful binds' },
    },
  },
  constants: (params) => {
    const ports = (params.ports as number[] | undefined) ?? [];
    return { targ_ports: ports, targ_nports: ports.length, targ_ignore_errors: params.ignore_errors === true };
  },
} satisfies GadgetDefinition;
