import { networkPolicies, podsOfTable } from './network-policy/policies.ts';
import { traceTcp } from '../trace/tcp.ts';
import type { FieldSpec, GadgetDefinition } from '../../steps/types.ts';

/** bpf/trace_tcp.h TCP_OP_* and bpf/advise_network.h ADVISE_OP_UDP_* */
const OPERATIONS: Readonly<Record<number, string>> = { 1: 'connect', 2: 'accept', 3: 'close', 4: 'udp_send', 5: 'udp_recv' };

/** trace/tcp's fields, with the udp operation named and what ret and the local end mean for it */
const FIELDS: FieldSpec[] = traceTcp.fields.map((f): FieldSpec => {
  if (f.name === 'operation') {
    return {
      ...f, names: OPERATIONS,
      description: 'connect (completed or failed), accept, close (the connection is gone); udp_send / udp_recv: the first datagram the process sent to / received from daddr:dport (the peer) on local port sport',
    };
  }
  if (f.name === 'ret') return { ...f, description: `${f.description}; udp_send, udp_recv: 0 (sends and receives that failed are not reported)` };
  if (f.name === 'daddr') return { ...f, description: 'remote address (udp_recv: the sender)' };
  return f;
});

/**
 * advise/network-policy: trace/tcp's programs plus UDP sends and receives
 * (bpf/advise_network.bpf.c says why the syscalls' tracepoints) watch
 * the connections the selected pods (or the workload) make and accept, and
 * the UDP peers they send to and receive from; at evaluation the step's result becomes
 * NetworkPolicy documents (./network-policy/policies.ts).
 * The captured events stay in DIR/raw/<step>.ndjson.
 */
export const adviseNetworkPolicy = {
  ...traceTcp,
  id: 'advise/network-policy',
  description:
    'Watch the TCP connections the selected pods (or the workload) make and accept, and the UDP datagrams they send and receive, then generate Kubernetes NetworkPolicy objects ' +
    '(networking.k8s.io/v1; write them with a .yaml output): ingress from the peers seen on the ports accepted on (TCP) or first received on (UDP), egress to the peers and ports connected or first sent to ' +
    '(protocol TCP or UDP: DNS over UDP is UDP 53 to the resolver; a UDP reply is neither, a NetworkPolicy lets it through). ' +
    'A peer traced on this node is its pod (TCP: paired by the connection\'s 4-tuple, so hostNetwork pods are told apart; UDP: by the client\'s end and the server\'s port, so also behind a Service IP); otherwise a pod by its IP, or an ipBlock /32 or /128. ' +
    'A container selection (containers:, or -n/-p/-c/-l) chooses whose policies are generated; the whole node is recorded so that peers on it are known by their cgroups. ' +
    'A workload outside Kubernetes gets a policy named "workload" with a placeholder podSelector to replace. Not seen: UDP by write()/read() on a connected socket or io_uring. ' +
    'Hooks: those of trace/tcp, syscalls sendto/sendmsg/sendmmsg/recvfrom/recvmsg/recvmmsg (entry and exit)',
  object: 'advise_network.bpf.o',
  fields: FIELDS,
  selects: 'documents',
  requires: [
    ...traceTcp.requires,
    ...['sendto', 'sendmsg', 'sendmmsg', 'recvfrom', 'recvmsg', 'recvmmsg'].flatMap((call) => [
      { tracepoint: `syscalls/sys_enter_${call}` },
      { tracepoint: `syscalls/sys_exit_${call}` },
    ]),
  ],
  advise: {
    generate: (rows, containers, step) => networkPolicies(rows, { containers, pods: podsOfTable(containers), ...(step.selection ? { selection: step.selection } : {}) }),
    fields: () => ['apiVersion', 'kind', 'metadata', 'spec'],
  },
} satisfies GadgetDefinition;
