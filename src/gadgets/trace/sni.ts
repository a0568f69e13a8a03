import { field } from '../common-fields.ts';
import type { ConstantValue } from '../../ebpf/object.ts';
import { parseSni } from './sni/client-hello.ts';
import { PACKET_HEAD_FIELDS, PACKET_TAIL_FIELDS, packetParams } from '../../steps/modes/packet.ts';
import type { PacketGadget, PacketParser } from '../../steps/types.ts';

/** SNI_MAX_PORTS in bpf/trace_sni.h */
const MAX_PORTS = 8;

const sniParser = (): PacketParser => ({ flow }) => {
  if (flow.proto !== 6) return undefined;
  const name = parseSni(flow.payload);
  return name === undefined ? undefined : { name };
};

export const traceSni = {
  id: 'trace/sni',
  description:
    'Trace TLS ClientHellos: which server name (SNI) a client asks for, on any TCP port or params.ports. ' +
    'Node-wide through a socket filter on a packet socket in one network namespace (params.netns), ' +
    'or only the workload\'s connections through cgroup_skb programs on its cgroup',
  mode: 'packet',
  liveness: { canary: ['tls'] },
  object: 'trace_sni.bpf.o',
  struct: 'packet_event',
  fields: [
    field.timestamp, ...PACKET_HEAD_FIELDS,
    { name: 'name', type: 'string', description: 'the server_name of the ClientHello; "" when it has none (a name past the first 2 KiB of the segment is not seen)' },
    ...PACKET_TAIL_FIELDS,
  ],
  kernelFilters: {},
  requires: [],
  params: packetParams({
    ports: {
      type: 'array',
      maxItems: MAX_PORTS,
      items: { type: 'integer', minimum: 1, maximum: 65535 },
      description: `TCP ports to watch, either end (at most ${MAX_PORTS}; default: every port)`,
    },
  }),
  constants: (params): Record<string, ConstantValue> => (Array.isArray(params.ports) ? { targ_ports: params.ports as number[] } : {}),
  packet: { socket: 'sni_socket', ingress: 'sni_ingress', egress: 'sni_egress', parser: sniParser },
} satisfies PacketGadget;
