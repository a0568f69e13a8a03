import { auditEgress, EGRESS_PARAMS } from '../audit/egress.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/**
 * The allow-list a run needed: every destination the workload connected or
 * sent to, as an allow entry (the name its address came from when its DNS
 * answer named one, else the address), sorted; what loopback and the
 * resolvers account for (allow_loopback, allow_resolver) is left out.
 */
export function neededAllowList(rows: Record<string, unknown>[]): string[] {
  // rules past the recipe's own entries are loopback's and the resolvers' (audit/egress egressRules): the kernel reports none of theirs
  return [...new Set(rows.map((r) => r.destination as string))].sort();
}

/**
 * advise/egress: audit/egress reporting every attempt (nothing refused); at
 * evaluation the step's result is one document, { allow: [...] }: the next
 * run's `egress.allow`, or with `transform: '[allow]'` a JSON array for
 * `egress.baseline`.
 */
export const adviseEgress = {
  ...auditEgress,
  id: 'advise/egress',
  description:
    'Learn the egress allow-list the workload needs: every destination it connects or sends to (TCP, UDP; IPv4, IPv6), as the name its own DNS answer gave the address ' +
    '(name:port/proto) or the address (address:port/proto), sorted, loopback and the resolvers left out unless allow_loopback / allow_resolver is false. ' +
    'The result is one document { allow: [...] }: the next run\'s egress.allow, or (transform: \'[allow]\', a JSON array even when empty) a baseline file for egress.baseline. Hooks: those of audit/egress, refusing nothing',
  params: {
    ...EGRESS_PARAMS,
    properties: { allow_loopback: EGRESS_PARAMS.properties.allow_loopback, allow_resolver: EGRESS_PARAMS.properties.allow_resolver },
  },
  // loopback's and the resolvers' entries come after none of the recipe's: attempts they allow are not reported
  constants: () => ({ egress_block: 0, egress_report_allowed: 1, egress_quiet_from: 0 }),
  document: true,
  advise: {
    generate: (rows) => [{ allow: neededAllowList(rows) }],
    fields: () => ['allow'],
  },
} satisfies GadgetDefinition;
