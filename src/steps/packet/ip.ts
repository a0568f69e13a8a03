/**
 * The IP and transport headers of a captured packet (bytes from the IP
 * header on, as include/packet.h copies them). Total on any input: a short
 * or malformed packet gives undefined, never an exception.
 */

export interface Flow {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  /** 6 TCP, 17 UDP */
  proto: number;
  /** where the transport payload starts, and the bytes of it captured */
  payload: Uint8Array;
}

const TCP = 6;
const UDP = 17;

export function parseFlow(b: Uint8Array): Flow | undefined {
  if (b.length < 1) return undefined;
  const version = b[0] >> 4;
  let saddr: string;
  let daddr: string;
  let proto: number;
  let l4: number;
  let end = b.length;
  if (version === 4) {
    if (b.length < 20) return undefined;
    l4 = (b[0] & 0x0f) * 4;
    if (l4 < 20) return undefined;
    proto = b[9];
    saddr = formatIpv4(b, 12);
    daddr = formatIpv4(b, 16);
    // the total length drops link-layer padding; 0 on some offloaded packets
    const total = (b[2] << 8) | b[3];
    if (total >= l4) end = Math.min(end, total);
  } else if (version === 6) {
    if (b.length < 40) return undefined;
    l4 = 40;
    proto = b[6];
    saddr = formatIpv6(b, 8);
    daddr = formatIpv6(b, 24);
    end = Math.min(end, 40 + ((b[4] << 8) | b[5]));
  } else {
    return undefined;
  }
  let payloadAt: number;
  if (proto === UDP) payloadAt = l4 + 8;
  else if (proto === TCP) {
    if (l4 + 13 > end) return undefined;
    payloadAt = l4 + (b[l4 + 12] >> 4) * 4;
  } else return undefined;
  if (l4 + 4 > end || payloadAt > end) return undefined;
  return {
    saddr, daddr, proto,
    sport: (b[l4] << 8) | b[l4 + 1],
    dport: (b[l4 + 2] << 8) | b[l4 + 3],
    payload: b.subarray(payloadAt, end),
  };
}

export function formatIpv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952: the longest run (2+) of zero groups, the first one on a tie, becomes "::";
 * [start, length] of it, or [-1, 0]. Shared with the event codec's allocation-free writer. */
export function ipv6ZeroRun(groups: ArrayLike<number>): [number, number] {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  return [best, best < 0 ? 0 : bestLen];
}

/** RFC 5952 text: lowercase hex, the longest run (2+) of zero groups as ::, IPv4-mapped as ::ffff:a.b.c.d. */
export function formatIpv6(b: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[at + 2 * i] << 8) | b[at + 2 * i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${formatIpv4(b, at + 12)}`;
  const [best, bestLen] = ipv6ZeroRun(groups);
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}
