import { networkPolicies, podsOfTable } from './advise/network-policy.ts';
import { traceTcp } from './trace-tcp.ts';
import type { FieldSpec, GadgetDefinition } from './types.ts';

/** bpf/trace_tcp.h TCP_OP_* and bpf/advise_network.h ADVISE_OP_UDP_SEND */
const OPERATIONS: Readonly<Record<number, string>> = { 1: 'connect', 2: 'accept', 3: 'close', 4: 'udp' };

/** trace/tcp's fields, with the udp operation named and what ret and the local end mean for it */
const FIELDS: FieldSpec[] = traceTcp.fields.map((f): FieldSpec => {
  if (f.name === 'operation') {
    return { ...f, names: OPERATIONS, description: 'connect (completed or failed), accept, close (the connection is gone), or udp: the first datagram the process sent to daddr:dport' };
  }
  if (f.name === 'ret') return { ...f, description: `${f.description}; udp: 0 (the send's outcome is not followed)` };
  if (f.name === 'sport') return { ...f, description: 'local port (udp: 0 when the socket was not bound before this first send)' };
  return f;
});

/**
 * advise/network-policy: trace/tcp's programs plus UDP sends
 * (bpf/advise_network.bpf.c says why the send syscalls' tracepoints) watch
 * the connections the selected pods (or the workload) make and accept, and
 * the UDP destinations they send to; at evaluation the step's result becomes
 * NetworkPolicy documents (src/steps/advise/network-policy.ts).
 * The captured events stay in DIR/raw/<step>.ndjson.
 */
export const adviseNetworkPolicy = {
  ...traceTcp,
  id: 'advise/network-policy',
  description:
    'Watch the TCP connections the selected pods (or the workload) make and accept, and the UDP destinations they send datagrams to, then generate Kubernetes NetworkPolicy objects ' +
    '(networking.k8s.io/v1; write them with a .yaml output): ingress from the peers seen on the TCP ports accepted on, egress to the peers and ports connected or sent to (protocol TCP or UDP: DNS over UDP is UDP 53 to the resolver). ' +
    'A TCP peer traced on this node is its pod (paired by the connection\'s 4-tuple, so hostNetwork pods are told apart); otherwise, and for UDP, a pod by its IP, or an ipBlock /32 or /128. ' +
    'A workload outside Kubernetes gets a policy named "workload" with a placeholder podSelector to replace. UDP ingress is not seen (a UDP server\'s replies show as egress to its clients); ' +
    'nor are UDP sends by write()/writev() or io_uring. ' +
    'Hooks: those of trace/tcp, syscalls sendto/sendmsg/sendmmsg (entry)',
  object: 'advise_network.bpf.o',
  fields: FIELDS,
  requires: [
    ...traceTcp.requires,
    { tracepoint: 'syscalls/sys_enter_sendto' },
    { tracepoint: 'syscalls/sys_enter_sendmsg' },
    { tracepoint: 'syscalls/sys_enter_sendmmsg' },
  ],
  advise: {
    generate: (rows, containers) => networkPolicies(rows, { containers, pods: podsOfTable(containers) }),
    fields: ['apiVersion', 'kind', 'metadata', 'spec'],
  },
} satisfies GadgetDefinition;
