/**
 * The allow-list into audit/egress's maps (bpf/audit_egress.h): CIDR and
 * port rules into the LPM trie `allow_cidrs`, names and wildcards into
 * `allow_names` / `allow_suffixes` in DNS wire format, whose answers the
 * kernel adds to `allow_cidrs` itself.
 */
import type { BpfObject } from '../../../ebpf/object.ts';
import { encodeWire, nameRules, NAME_RULES, type Rule } from '../../../egress/allow.ts';

const CIDR_KEY_BYTES = 24;
const NAME_RULE_BYTES = 32;

/** struct egress_cidr_key: prefixlen (bits from proto on), proto, pad, port (network order), addr[16]. */
export function cidrKey(addr: Uint8Array, prefix: number, proto: number, port: number): Buffer {
  const k = Buffer.alloc(CIDR_KEY_BYTES);
  k.writeUInt32LE(32 + prefix, 0);
  k[4] = proto;
  k.writeUInt16BE(port, 6);
  k.set(addr, 8);
  return k;
}

/** struct egress_name_rule for the rules at `indices`. */
function nameRuleValue(rules: readonly Rule[], indices: number[]): Buffer {
  const v = Buffer.alloc(NAME_RULE_BYTES);
  indices.forEach((ri, j) => {
    v.writeInt32LE(ri, 4 * j);
    v.writeUInt16BE(rules[ri].port, 16 + 2 * j);
    v[24 + j] = rules[ri].proto;
  });
  v.writeUInt32LE(indices.length, 28);
  return v;
}

/** Write every rule into the loaded object's maps; a rule's index is its place in `rules`. */
export function fillAllowMaps(obj: BpfObject, rules: readonly Rule[]): void {
  const cidrs = obj.hashMap('allow_cidrs');
  rules.forEach((r, i) => {
    if (r.kind !== 'cidr' && r.kind !== 'any') return;
    const value = Buffer.alloc(4);
    value.writeInt32LE(i);
    cidrs.update(r.kind === 'any' ? cidrKey(new Uint8Array(16), 0, r.proto, r.port) : cidrKey(r.addr, r.prefix, r.proto, r.port), value);
  });
  for (const [kind, map] of [['name', 'allow_names'], ['wildcard', 'allow_suffixes']] as const) {
    const m = obj.hashMap(map);
    for (const [name, indices] of nameRules(rules, kind)) m.update(encodeWire(name), nameRuleValue(rules, indices));
  }
}
