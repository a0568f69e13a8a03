import { field } from '../common-fields.ts';
import { DNS_QTYPES, DNS_RCODES } from '../../steps/names/dns.ts';
import { parseDns } from './dns/message.ts';
import { PACKET_HEAD_FIELDS, PACKET_TAIL_FIELDS, packetParams } from '../../steps/modes/packet.ts';
import type { PacketGadget, PacketParser } from '../../steps/types.ts';

const DNS_PORT = 53;
/** queries remembered for timing their responses; the oldest go first */
const MAX_PENDING = 4096;

/**
 * DNS over UDP port 53, parsed in user space. A response's latency is the
 * time since the query with the same id, name and client address and port
 * was seen (0 when that query was not seen).
 */
function dnsParser(): PacketParser {
  const pending = new Map<string, bigint>();
  return ({ flow, bootNs }) => {
    if (flow.proto !== 17 || (flow.sport !== DNS_PORT && flow.dport !== DNS_PORT)) return undefined;
    const m = parseDns(flow.payload);
    if (!m) return undefined;
    const client = m.response ? `${flow.daddr} ${flow.dport}` : `${flow.saddr} ${flow.sport}`;
    const key = `${m.id} ${m.name} ${client}`;
    let latency = 0;
    if (!m.response) {
      pending.delete(key); // a retry times from its latest send
      pending.set(key, bootNs);
      if (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value!);
    } else {
      const sent = pending.get(key);
      if (sent !== undefined) {
        pending.delete(key);
        latency = Number(bootNs - sent);
      }
    }
    return {
      id: m.id,
      qr: m.response ? 'R' : 'Q',
      qtype: m.qtype,
      qtype_name: DNS_QTYPES[m.qtype] ?? String(m.qtype),
      name: m.name,
      rcode: m.rcode,
      rcode_name: DNS_RCODES[m.rcode] ?? String(m.rcode),
      answers: m.answers,
      latency,
    };
  };
}

export const traceDns = {
  id: 'trace/dns',
  description:
    'Trace DNS queries and responses (UDP port 53): name, type, rcode, A/AAAA answers, latency. ' +
    'Node-wide through a socket filter on a packet socket in one network namespace (params.netns), ' +
    'or only the workload\'s traffic through cgroup_skb programs on its cgroup',
  mode: 'packet',
  liveness: { canary: ['dns'] },
  object: 'trace_dns.bpf.o',
  struct: 'packet_event',
  fields: [
    field.timestamp, ...PACKET_HEAD_FIELDS,
    { name: 'id', type: 'number', description: 'DNS message id' },
    { name: 'qr', type: 'string', description: '"Q" for a query, "R" for a response' },
    { name: 'qtype', type: 'number', names: DNS_QTYPES, description: 'query type (1 A, 28 AAAA, 5 CNAME, 15 MX, 16 TXT, 12 PTR, 33 SRV, 255 ANY, ...); filters take names too: qtype==AAAA' },
    { name: 'qtype_name', type: 'string', description: 'query type by name (A, AAAA, ...; the number when it has none)' },
    { name: 'name', type: 'string', description: 'the queried name, dotted, without the trailing dot' },
    { name: 'rcode', type: 'number', names: DNS_RCODES, description: 'response code (0 in queries); filters take names too: rcode==NXDOMAIN' },
    { name: 'rcode_name', type: 'string', description: 'response code by name (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)' },
    { name: 'answers', type: 'string[]', description: 'addresses of the A and AAAA answer records (responses)' },
    { name: 'latency', type: 'number', description: 'ns from the matching query (same id, name, client address and port) to this response; 0 for queries and unmatched responses' },
    ...PACKET_TAIL_FIELDS,
  ],
  kernelFilters: {},
  requires: [],
  params: packetParams(),
  packet: { socket: 'dns_socket', ingress: 'dns_ingress', egress: 'dns_egress', parser: dnsParser },
} satisfies PacketGadget;
