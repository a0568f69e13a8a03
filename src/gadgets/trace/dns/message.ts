/**
 * A DNS message parser for what trace/dns captures. It is total: on any
 * bytes it returns a message or undefined and never throws, and every loop
 * is bounded (labels, compression jumps, records), so a hostile packet
 * cannot hang or crash the consumer (test/steps/packet-parsers.test.ts fuzzes it).
 */
import { formatIpv4, formatIpv6 } from '../../../steps/packet/ip.ts';

export interface DnsMessage {
  id: number;
  /** true for a response */
  response: boolean;
  opcode: number;
  rcode: number;
  /** the first question's name (dotted, no trailing dot; "" for the root) and type */
  name: string;
  qtype: number;
  /** addresses of the A and AAAA answer records */
  answers: string[];
}

const HEADER = 12;
const TYPE_A = 1;
const TYPE_AAAA = 28;
/** RFC 1035: a name is at most 255 bytes on the wire, so at most 127 labels */
const MAX_NAME_BYTES = 255;
const MAX_LABELS = 127;
/** each jump must go strictly backwards, so this is only a second guard */
const MAX_JUMPS = 64;
const MAX_RECORDS = 64;

export function parseDns(b: Uint8Array): DnsMessage | undefined {
  if (b.length < HEADER) return undefined;
  const u16 = (at: number) => (b[at] << 8) | b[at + 1];
  const flags = u16(2);
  const qdcount = u16(4);
  const ancount = u16(6);
  if (qdcount < 1) return undefined;
  const q = readName(b, HEADER);
  if (!q || q.next + 4 > b.length) return undefined;
  const msg: DnsMessage = {
    id: u16(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0x0f,
    rcode: flags & 0x0f,
    name: q.name,
    qtype: u16(q.next),
    answers: [],
  };
  let at = q.next + 4;
  // further questions (rare): skip them
  for (let i = 1; i < Math.min(qdcount, MAX_RECORDS); i++) {
    const n = readName(b, at);
    if (!n || n.next + 4 > b.length) return msg;
    at = n.next + 4;
  }
  for (let i = 0; i < Math.min(ancount, MAX_RECORDS); i++) {
    const n = readName(b, at);
    if (!n || n.next + 10 > b.length) break; // answers cut by the capture: keep what was read
    const type = u16(n.next);
    const rdlength = u16(n.next + 8);
    const rdata = n.next + 10;
    if (rdata + rdlength > b.length) break;
    if (type === TYPE_A && rdlength === 4) msg.answers.push(formatIpv4(b, rdata));
    else if (type === TYPE_AAAA && rdlength === 16) msg.answers.push(formatIpv6(b, rdata));
    at = rdata + rdlength;
  }
  return msg;
}

/**
 * The name at `at` and the offset after it (after the first compression
 * pointer, if any). Labels are ASCII with `.` and `\` escaped and other
 * bytes as \DDD (the presentation format of RFC 4343).
 */
export function readName(b: Uint8Array, at: number): { name: string; next: number } | undefined {
  const labels: string[] = [];
  let next = -1;
  let pos = at;
  let wire = 1;
  for (let jumps = 0; labels.length <= MAX_LABELS; ) {
    if (pos >= b.length) return undefined;
    const len = b[pos];
    if (len === 0) {
      return { name: labels.join('.'), next: next < 0 ? pos + 1 : next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= b.length || ++jumps > MAX_JUMPS) return undefined;
      const target = ((len & 0x3f) << 8) | b[pos + 1];
      if (next < 0) next = pos + 2;
      // only backwards, to an earlier label: no pointer can loop
      if (target >= pos) return undefined;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) return undefined; // 0x40/0x80: extended label types, obsolete
    wire += len + 1;
    if (wire > MAX_NAME_BYTES || pos + 1 + len > b.length) return undefined;
    labels.push(label(b, pos + 1, len));
    pos += 1 + len;
  }
  return undefined;
}

function label(b: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const c = b[i];
    if (c === 0x2e || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\${String(c).padStart(3, '0')}`;
  }
  return s;
}
