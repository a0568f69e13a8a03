/**
 * The server_name of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3), from
 * the first bytes of a TCP payload. Total: on any bytes it returns the name
 * or undefined and never throws; every loop is bounded by the input length
 * (test/steps/packet-parsers.test.ts fuzzes it).
 */

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const HOST_NAME = 0;

/** Whether the payload starts like a TLS record carrying a ClientHello. */
export function isClientHello(b: Uint8Array): boolean {
  return b.length >= 6 && b[0] === HANDSHAKE && b[1] === 3 && b[5] === CLIENT_HELLO;
}

/** The host name of the ClientHello's server_name extension; "" when it has none; undefined when not a ClientHello or cut before the extension. */
export function parseSni(b: Uint8Array): string | undefined {
  if (!isClientHello(b)) return undefined;
  const u16 = (at: number) => (b[at] << 8) | b[at + 1];
  // record header (5) + handshake header (4) + client version (2) + random (32)
  let at = 5 + 4 + 2 + 32;
  if (at + 1 > b.length) return undefined;
  at += 1 + b[at]; // session id
  if (at + 2 > b.length) return undefined;
  at += 2 + u16(at); // cipher suites
  if (at + 1 > b.length) return undefined;
  at += 1 + b[at]; // compression methods
  if (at + 2 > b.length) return undefined;
  const declaredEnd = at + 2 + u16(at);
  const end = Math.min(b.length, declaredEnd);
  at += 2;
  while (at + 4 <= end) {
    const type = u16(at);
    const len = u16(at + 2);
    at += 4;
    if (type === EXT_SERVER_NAME) return hostName(b, at, Math.min(end, at + len));
    at += len;
  }
  // no server_name: known only when the capture holds every extension
  return declaredEnd > b.length ? undefined : '';
}

function hostName(b: Uint8Array, at: number, end: number): string | undefined {
  if (at + 2 > end) return undefined;
  const listEnd = Math.min(end, at + 2 + ((b[at] << 8) | b[at + 1]));
  at += 2;
  while (at + 3 <= listEnd) {
    const type = b[at];
    const len = (b[at + 1] << 8) | b[at + 2];
    at += 3;
    if (at + len > listEnd) return undefined;
    if (type === HOST_NAME) return ascii(b, at, len);
    at += len;
  }
  return undefined;
}

/** Host names are ASCII (A-labels); other bytes are shown as \DDD so the field is never mojibake. */
function ascii(b: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const c = b[i];
    s += c > 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`;
  }
  return s;
}
