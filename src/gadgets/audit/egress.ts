import { field } from '../common-fields.ts';
import type { BpfObject } from '../../ebpf/object.ts';
import type { StepContext, StreamGadget } from '../../steps/types.ts';
import { defaultEntries, destinationText, parseAllow, readResolvers, type Rule } from '../../egress/allow.ts';
import { fillAllowMaps } from './egress/maps.ts';

/** bpf/audit_egress.h EGRESS_HOOK_*, EGRESS_ALLOWED/REPORTED/REFUSED */
const HOOKS: Readonly<Record<number, string>> = { 1: 'connect', 2: 'sendmsg' };
const VERDICTS: Readonly<Record<number, string>> = { 1: 'allowed', 2: 'reported', 3: 'refused' };
const PROTOS: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp' };

/** What a step of audit/egress (the recipe's `egress:` block) takes. */
export interface EgressParams {
  mode?: 'audit' | 'block';
  allow?: string[];
  /** 127.0.0.0/8 and ::1 (default true) */
  allow_loopback?: boolean;
  /** the nameservers of /etc/resolv.conf, port 53 (default true) */
  allow_resolver?: boolean;
  /** report allowed attempts too (a baseline, advise/egress) */
  report_allowed?: boolean;
  /** the index of the first entry loopback or the resolvers added (default: past `allow`): attempts they allow are never reported */
  defaults_from?: number;
}

/** The rules a step enforces, in order: the recipe's entries, then loopback and the resolvers when allowed; each one's index is what events' `rule` names. */
export function egressRules(params: EgressParams): Rule[] {
  const resolvers = params.allow_resolver ?? true ? readResolvers() : [];
  return [...(params.allow ?? []), ...defaultEntries({ loopback: params.allow_loopback ?? true, resolvers })].map(parseAllow);
}

export const EGRESS_PARAMS = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: { enum: ['audit', 'block'], description: 'block: refuse what is not allowed (the caller gets EPERM); audit: let it through and report it' },
    allow: { type: 'array', maxItems: 1024, items: { type: 'string', maxLength: 300 }, description: 'allowed destinations: CIDRs and addresses, names and wildcards (*.npmjs.org), *, each optionally :PORT and /tcp or /udp' },
    allow_loopback: { type: 'boolean', description: 'allow 127.0.0.0/8 and ::1 (default true)' },
    allow_resolver: { type: 'boolean', description: 'allow the nameservers of /etc/resolv.conf on port 53 (default true)' },
    report_allowed: { type: 'boolean', description: 'report allowed attempts too (default false)' },
    defaults_from: { type: 'integer', minimum: 0, description: 'the index of the first allow entry that stands for loopback or the resolvers (the egress block spells them out): attempts they allow are not reported' },
  },
} as const;

/** the most JSON text a name from the kernel makes: EGRESS_NAME_MAX (128) bytes, each escaped as \u00XX at worst */
const NAME_JSON_MAX = 128 * 6;

/** a name from the event, or the address: how the destination is written in an allow-list */
const destination = (name: string, daddr: string, dport: number, proto: string) => destinationText(name || daddr, dport, proto === 'tcp' ? 6 : proto === 'udp' ? 17 : 0);

export const auditEgress = {
  id: 'audit/egress',
  description:
    'Enforce an egress allow-list on the workload and the containers it starts, in the kernel: cgroup connect4/connect6/sendmsg4/sendmsg6 programs refuse (block: EPERM) or report (audit) ' +
    'destinations no entry allows; names allow the addresses the workload\'s own DNS answers gave them (UDP answers from an allowed resolver, read by a cgroup_skb/ingress program before they reach the socket). ' +
    'The programs sit on the cgroup v2 root and judge only the run: the workload\'s cgroup, its descendants, and its containers\' cgroups, known in the kernel before they run anything. ' +
    'Each attempt not allowed is an event, once per process and destination. A recipe\'s `egress:` block runs it as the step `egress`',
  mode: 'stream',
  // the canary's connect and datagram to 192.0.2.1:9 from its private network namespace: the
  // programs report every attempt of the canary's (whatever the list allows) and refuse none
  liveness: { canary: ['egress'] },
  object: 'audit_egress.bpf.o',
  struct: 'egress_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.comm,
    { name: 'daddr', type: 'string', decode: 'ipaddr', family: 'family', description: 'destination address' },
    { name: 'dport', type: 'number', decode: 'port', description: 'destination port' },
    { name: 'proto', type: 'string', decode: 'enum', names: PROTOS, description: 'tcp or udp (another protocol as its number)' },
    { name: 'hook', type: 'string', decode: 'enum', names: HOOKS, description: 'connect (connect(), TCP or connected UDP) or sendmsg (a UDP datagram to an address)' },
    { name: 'verdict', type: 'string', decode: 'enum', names: VERDICTS, description: 'refused (block: the caller got EPERM), reported (audit: let through), allowed (with report_allowed)' },
    { name: 'rule', type: 'number', description: 'the index of the allow entry that matched (summary.json steps[].egress.rules); -1 none' },
    { name: 'name', type: 'string', description: 'the DNS name whose answer gave the workload this address; "" when none did' },
    {
      name: 'destination', type: 'string', decode: 'derive', description: 'the destination as an allow entry: name:port/proto, else address:port/proto',
      derive: { from: ['name', 'daddr', 'dport', 'proto'], fn: destination, maxBytes: 2 + NAME_JSON_MAX + 16 },
    },
    {
      name: 'reason', type: 'string', decode: 'derive', description: 'why it is reported: no entry allows the address, or the name it came from is not allowed',
      derive: {
        from: ['verdict', 'name'],
        fn: (verdict: string, name: string) => verdict === 'allowed' ? 'allowed' : name ? `no allow entry for ${name} or this address` : 'no allow entry for this address',
        maxBytes: 2 + 40 + NAME_JSON_MAX,
      },
    },
    field.uid, field.gid, field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: {},
  // attached by the runner to the cgroup v2 root (cgroupPrograms); the load probe verifies them
  selects: 'workload',
  requires: [{ program: 'cgroup connect4' }, { program: 'cgroup connect6' }, { program: 'cgroup sendmsg4' }, { program: 'cgroup sendmsg6' }, { program: 'cgroup_skb ingress' }],
  params: EGRESS_PARAMS,
  constants: (params: Record<string, unknown>) => ({
    egress_block: (params as EgressParams).mode === 'block' ? 1 : 0,
    egress_report_allowed: (params as EgressParams).report_allowed ? 1 : 0,
    egress_quiet_from: (params as EgressParams).defaults_from ?? (params as EgressParams).allow?.length ?? 0,
  }),
  cgroupPrograms: ['egress_connect4', 'egress_connect6', 'egress_sendmsg4', 'egress_sendmsg6', 'egress_dns'],
  beforeAttach: (obj: BpfObject, ctx: StepContext) => fillAllowMaps(obj, egressRules(ctx.params as EgressParams)),
} satisfies StreamGadget;
