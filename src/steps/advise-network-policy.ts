import { networkPolicies, podsOfTable } from './advise/network-policy.ts';
import { traceTcp } from './trace-tcp.ts';
import type { GadgetDefinition } from './types.ts';

/**
 * advise/network-policy: trace/tcp's object and hooks watch the connections
 * the selected pods (or the workload) make and accept; at evaluation the
 * step's result becomes NetworkPolicy documents (src/steps/advise/network-policy.ts).
 * The captured connections stay in DIR/raw/<step>.ndjson.
 */
export const adviseNetworkPolicy = {
  ...traceTcp,
  id: 'advise/network-policy',
  description:
    'Watch the TCP connections the selected pods (or the workload) make and accept, then generate Kubernetes NetworkPolicy objects ' +
    '(networking.k8s.io/v1; write them with a .yaml output): ingress from the peers seen on the ports accepted on, egress to the peers and ports connected to. ' +
    'A peer traced on this node is its pod (paired by the connection\'s 4-tuple, so hostNetwork pods are told apart); otherwise a pod by its IP, or an ipBlock /32 or /128. ' +
    'A workload outside Kubernetes gets a policy named "workload" with a placeholder podSelector to replace. Only TCP: UDP (DNS over UDP) is not seen. ' +
    'Hooks: those of trace/tcp',
  advise: {
    generate: (rows, containers) => networkPolicies(rows, { containers, pods: podsOfTable(containers) }),
    fields: ['apiVersion', 'kind', 'metadata', 'spec'],
  },
} satisfies GadgetDefinition;
