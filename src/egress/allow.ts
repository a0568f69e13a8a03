/**
 * The egress allow-list: each entry a CIDR or address (IPv4, IPv6), a DNS
 * name or a wildcard (`*.npmjs.org`: names below npmjs.org), or any address
 * (`*`, or nothing before the port), optionally with `:PORT` and then
 * `/tcp` or `/udp`. IPv6 with a port is bracketed: `[2001:db8::/32]:443`.
 * Entries come from recipes (untrusted): every problem says what to write.
 */
import fs from 'node:fs';
import net from 'node:net';

export const PROTOCOLS = { tcp: 6, udp: 17 } as const;
export type ProtocolName = keyof typeof PROTOCOLS;
const PROTO_NAMES: Record<number, ProtocolName> = { 6: 'tcp', 17: 'udp' };

/** bpf/audit_egress.h EGRESS_NAME_MAX: a name's wire form with its root byte, zero-padded */
export const NAME_WIRE_BYTES = 128;

export type Rule =
  | (RuleBase & { kind: 'cidr'; /** 16 bytes, IPv4 as ::ffff:a.b.c.d */ addr: Uint8Array; /** bits of addr, in the IPv6 space */ prefix: number })
  | (RuleBase & { kind: 'name' | 'wildcard'; /** lower case, no trailing dot; a wildcard's without "*." */ name: string })
  | (RuleBase & { kind: 'any' });

interface RuleBase {
  /** the entry as written */
  text: string;
  /** 0: any port */
  port: number;
  /** 0: any protocol, 6 TCP, 17 UDP */
  proto: number;
}

export class AllowError extends Error {}

const HINT = 'write a CIDR or address (10.0.0.0/8, 2001:db8::1), a name (registry.npmjs.org, *.npmjs.org) or * , optionally :PORT and then /tcp or /udp (IPv6 with a port in brackets: [::1]:443)';

/** One allow-list entry, parsed; throws AllowError saying what is wrong. */
export function parseAllow(text: string): Rule {
  const fail = (why: string): never => {
    throw new AllowError(`"${text}": ${why} — ${HINT}`);
  };
  if (typeof text !== 'string' || !text.trim()) fail('empty entry');
  let rest = text.trim();
  let proto = 0;
  const p = /\/(tcp|udp)$/i.exec(rest);
  if (p && /:\d+\/(tcp|udp)$/i.test(rest)) {
    proto = PROTOCOLS[p[1].toLowerCase() as ProtocolName];
    rest = rest.slice(0, -p[0].length);
  }
  let port = 0;
  let host = rest;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracket) {
    host = bracket[1];
    if (bracket[2] !== undefined) port = checkPort(bracket[2], fail);
    if (!host.includes(':')) fail('brackets are for IPv6 addresses');
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    const i = rest.indexOf(':');
    host = rest.slice(0, i);
    port = checkPort(rest.slice(i + 1), fail);
  } else if (/\/(tcp|udp)$/i.test(rest)) {
    fail('a protocol needs a port before it (example.com:53/udp)');
  }
  const base = { text, port, proto };
  if (host === '' || host === '*') {
    if (!port && !proto) fail('"*" alone allows everything; give a port (*:443) or drop the egress block');
    return { ...base, kind: 'any' };
  }
  const cidr = parseCidr(host);
  if (cidr) return { ...base, kind: 'cidr', ...cidr };
  if (host.includes(':') || /^[\d./]+$/.test(host)) fail(`${JSON.stringify(host)} is not an IPv4 or IPv6 address or CIDR`);
  const wildcard = host.startsWith('*.');
  const name = checkName(wildcard ? host.slice(2) : host, fail);
  return { ...base, kind: wildcard ? 'wildcard' : 'name', name };
}

function checkPort(s: string, fail: (why: string) => never): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) fail(`port ${JSON.stringify(s)} is not 1-65535`);
  return Number(s);
}

/** 16 bytes and a prefix length in the IPv6 space, or undefined when `s` is not an address or CIDR. */
export function parseCidr(s: string): { addr: Uint8Array; prefix: number } | undefined {
  const slash = s.indexOf('/');
  const ip = slash < 0 ? s : s.slice(0, slash);
  const family = net.isIP(ip);
  if (!family) return undefined;
  const full = family === 4 ? 32 : 128;
  let bits = full;
  if (slash >= 0) {
    const len = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(len) || Number(len) > full) return undefined;
    bits = Number(len);
  }
  const addr = family === 4 ? mapped(ip) : ipv6Bytes(ip);
  const prefix = family === 4 ? 96 + bits : bits;
  // the address as its prefix: host bits cleared, so two spellings of one network are one rule
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    addr[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return { addr, prefix };
}

function mapped(ip: string): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = out[11] = 0xff;
  ip.split('.').forEach((o, i) => (out[12 + i] = Number(o)));
  return out;
}

export function ipv6Bytes(ip: string): Uint8Array {
  let text = ip;
  const out = new Uint8Array(16);
  // a trailing dotted IPv4 (::ffff:1.2.3.4)
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function checkName(name: string, fail: (why: string) => never): string {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.includes('*')) fail('a wildcard is only "*." before a name (*.npmjs.org)');
  const labels = n.split('.');
  for (const l of labels) {
    if (!l) fail('a name has an empty label');
    if (l.length > 63) fail(`label "${l.slice(0, 20)}…" is longer than 63 bytes`);
    if (!/^[a-z0-9_-]+$/.test(l)) fail(`label "${l}" has a character names do not have (letters, digits, - and _)`);
  }
  if (encodedLength(n) > NAME_WIRE_BYTES) fail(`the name is longer than ${NAME_WIRE_BYTES - 2} bytes, the longest the kernel side matches`);
  return n;
}

function encodedLength(name: string): number {
  return name.split('.').reduce((n, l) => n + 1 + Buffer.byteLength(l), 0) + 1;
}

/** A name in DNS wire format (length-prefixed labels, the root's 0), zero-padded to NAME_WIRE_BYTES: the kernel's map key. */
export function encodeWire(name: string): Uint8Array {
  const out = new Uint8Array(NAME_WIRE_BYTES);
  let at = 0;
  for (const label of name.split('.')) {
    const b = Buffer.from(label, 'latin1');
    if (!b.length || b.length > 63 || at + 1 + b.length >= NAME_WIRE_BYTES) throw new Error(`cannot encode ${JSON.stringify(name)} in ${NAME_WIRE_BYTES} bytes of DNS wire format`);
    out[at++] = b.length;
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** The dotted name of a wire-format name (the inverse of encodeWire; undefined when malformed). */
export function decodeWire(wire: Uint8Array): string | undefined {
  const labels: string[] = [];
  let at = 0;
  while (at < wire.length && wire[at] !== 0) {
    const len = wire[at];
    if (len > 63 || at + 1 + len > wire.length) return undefined;
    labels.push(Buffer.from(wire.subarray(at + 1, at + 1 + len)).toString('latin1'));
    at += 1 + len;
  }
  return at < wire.length ? labels.join('.') : undefined;
}

/** The text of a destination as an allow entry: `name:port/proto`, `addr:port/proto` (IPv6 bracketed). */
export function destinationText(host: string, port: number, proto: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  const p = PROTO_NAMES[proto];
  return `${h}${port ? `:${port}` : ''}${port && p ? `/${p}` : ''}`;
}

/** The rule as an allow entry (its canonical spelling). */
export function ruleText(r: Rule): string {
  const pp = `${r.port ? `:${r.port}` : ''}${r.port && r.proto ? `/${PROTO_NAMES[r.proto]}` : ''}`;
  if (r.kind === 'any') return `*${pp}`;
  if (r.kind !== 'cidr') return `${r.kind === 'wildcard' ? '*.' : ''}${r.name}${pp}`;
  const v4 = r.prefix >= 96 && r.addr.subarray(0, 12).every((b, i) => b === (i >= 10 ? 0xff : 0));
  const host = v4 ? `${[...r.addr.subarray(12)].join('.')}/${r.prefix - 96}` : `${ipv6Text(r.addr)}/${r.prefix}`;
  return r.port ? `${v4 ? host : `[${host}]`}${pp}` : host;
}

function ipv6Text(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  // net's own formatting (RFC 5952): through a socket address round trip is not exposed, so compress the longest zero run here
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The entries that loopback and the resolvers add when the recipe lets them (allow_loopback, allow_resolver). */
export function defaultEntries(opts: { loopback: boolean; resolvers: string[] }): string[] {
  return [
    ...(opts.loopback ? ['127.0.0.0/8', '::1/128'] : []),
    ...opts.resolvers.flatMap((r) => [`${r.includes(':') ? `[${r}]` : r}:53/udp`, `${r.includes(':') ? `[${r}]` : r}:53/tcp`]),
  ];
}

/** The nameservers of a resolv.conf text (IPv4 and IPv6; a zone index is dropped). */
export function nameservers(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const ip = m?.[1].replace(/%.*$/, '');
    if (ip && net.isIP(ip) && !out.includes(ip)) out.push(ip);
  }
  return out;
}

/** bpf/audit_egress.h EGRESS_NAME_RULES: allow entries (ports, protocols) per name */
export const NAME_RULES = 4;

/** The name rules grouped by name, in rule order: [name, indices]; more than NAME_RULES for one name is an error. */
export function nameRules(rules: readonly Rule[], kind: 'name' | 'wildcard'): Map<string, number[]> {
  const out = new Map<string, number[]>();
  rules.forEach((r, i) => {
    if (r.kind !== kind) return;
    const list = out.get(r.name) ?? [];
    list.push(i);
    out.set(r.name, list);
  });
  for (const [name, list] of out) {
    if (list.length > NAME_RULES) throw new Error(`${kind === 'wildcard' ? '*.' : ''}${name} has ${list.length} allow entries; at most ${NAME_RULES} ports or protocols per name (allow the name without a port instead)`);
  }
  return out;
}

/** Where the resolvers allow_resolver allows are read from. */
export const RESOLV_CONF = '/etc/resolv.conf';

/** The nameservers of a resolv.conf file; none when there is none. */
export function readResolvers(file = RESOLV_CONF): string[] {
  try {
    return nameservers(fs.readFileSync(file, 'utf8'));
  } catch {
    return []; // no resolv.conf: no resolver to allow
  }
}
