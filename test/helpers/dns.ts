/**
 * A small DNS server and client over UDP for the packet gadget tests: the
 * server answers A and AAAA queries with fixed addresses and NXDOMAIN for
 * names starting "nx-"; the client sends hand-built queries (no resolver,
 * no /etc/resolv.conf). Both on loopback only.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';

export const ANSWER_A = '192.0.2.53';
export const ANSWER_AAAA = '2001:db8::53';
export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const NXDOMAIN = 3;

/** A query: header (RD set), one question of class IN. */
export function buildQuery(id: number, name: string, qtype: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, encodeName(name), tail]);
}

export function encodeName(name: string): Buffer {
  const parts = name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

/** The server's answer to a query: the question echoed, one answer naming it by a compression pointer. */
export function buildResponse(query: Buffer): Buffer {
  const qdEnd = questionEnd(query);
  const name = readLabels(query, 12);
  const qtype = query.readUInt16BE(qdEnd - 4);
  const nx = name.startsWith('nx-');
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8180 | (nx ? NXDOMAIN : 0), 2); // QR, RD, RA
  const rdata = qtype === TYPE_A ? Buffer.from(ANSWER_A.split('.').map(Number)) : qtype === TYPE_AAAA ? ipv6Bytes(ANSWER_AAAA) : undefined;
  const answer = !nx && rdata ? record(rdata, qtype) : Buffer.alloc(0);
  header.writeUInt16BE(answer.length ? 1 : 0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  return Buffer.concat([header, query.subarray(12, qdEnd), answer]);
}

function record(rdata: Buffer, type: number): Buffer {
  const r = Buffer.alloc(12);
  r.writeUInt16BE(0xc00c, 0); // pointer to the question's name
  r.writeUInt16BE(type, 2);
  r.writeUInt16BE(1, 4);
  r.writeUInt32BE(60, 6);
  r.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([r, rdata]);
}

function questionEnd(b: Buffer): number {
  let at = 12;
  while (b[at] !== 0) at += b[at] + 1;
  return at + 5;
}

function readLabels(b: Buffer, at: number): string {
  const labels: string[] = [];
  while (b[at] !== 0) {
    labels.push(b.toString('latin1', at + 1, at + 1 + b[at]));
    at += b[at] + 1;
  }
  return labels.join('.');
}

function ipv6Bytes(text: string): Buffer {
  const [head, tail = ''] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

export interface DnsServer {
  port: number;
  address: string;
  close(): Promise<void>;
  /** what the server did, for a client's timeout to say which side was silent */
  seen: { queries: number; answered: number; errors: string[] };
}

/** A DNS server on `address` (127.0.0.1 or ::1), on port 53 unless told otherwise. */
export async function startDnsServer(address: string, port = 53): Promise<DnsServer> {
  const sock = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  const seen = { queries: 0, answered: 0, errors: [] as string[] };
  sock.on('message', (msg, rinfo) => {
    seen.queries++;
    let response: Buffer;
    try {
      response = buildResponse(msg);
    } catch {
      return; // not a query this server understands: no answer, as a real one might
    }
    sock.send(response, rinfo.port, rinfo.address, (err) => {
      if (err) seen.errors.push(`${err.message} (to ${rinfo.address}:${rinfo.port})`);
      else seen.answered++;
    });
  });
  sock.bind(port, address);
  await once(sock, 'listening');
  return { port: sock.address().port, address, seen, close: () => new Promise((r) => sock.close(() => r())) };
}

/** Send one query and wait for its answer; resolves with the response bytes. */
export async function query(server: { address: string; port: number; seen?: DnsServer['seen'] }, id: number, name: string, qtype: number): Promise<Buffer> {
  const sock = dgram.createSocket(net.isIPv6(server.address) ? 'udp6' : 'udp4');
  try {
    const answered = once(sock, 'message') as Promise<[Buffer]>;
    const before = server.seen && { ...server.seen };
    let sent = 'not yet sent';
    sock.send(buildQuery(id, name, qtype), server.port, server.address, (err) => { sent = err ? `send failed: ${err.message}` : 'sent'; });
    // which side was silent: the query not sent, not received, or answered and the answer lost
    const silent = () => {
      const s = server.seen;
      const side = s && before ? `; the server received ${s.queries - before.queries} and answered ${s.answered - before.answered} since${s.errors.length ? `, errors: ${s.errors.join('; ')}` : ''}` : '';
      return new Error(`no answer to ${name} from ${server.address}:${server.port} in 30 s (the query: ${sent}${side})`);
    };
    const [msg] = await Promise.race([answered, new Promise<never>((_, reject) => setTimeout(() => reject(silent()), 30_000))]);
    return msg;
  } finally {
    sock.close();
  }
}
