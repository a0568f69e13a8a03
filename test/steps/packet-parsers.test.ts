/** The packet parsers of trace/dns and trace/sni: exact on known bytes, total on any bytes (fast-check). No root needed. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import { parseDns, readName } from '../../src/gadgets/trace/dns/message.ts';
import { formatIpv6, parseFlow } from '../../src/steps/packet/ip.ts';
import { parseSni } from '../../src/gadgets/trace/sni/client-hello.ts';
import { ANSWER_A, ANSWER_AAAA, TYPE_A, TYPE_AAAA, buildQuery, buildResponse } from '../helpers/dns.ts';

const RUNS = 20_000;
const bytes = fc.uint8Array({ maxLength: 600 });

/** Random single-byte changes, cuts and extensions of a valid message: the inputs a parser meets most. */
function mutationsOf(valid: Buffer) {
  return fc.tuple(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(valid.length), fc.uint8Array({ maxLength: 32 }))
    .map(([edits, cut, tail]) => {
      const b = Buffer.concat([valid, Buffer.from(tail)]);
      for (const [at, v] of edits) b[at] = v;
      return b.subarray(0, cut + tail.length);
    });
}

describe('DNS parser', () => {
  test('a query and its answers: id, flags, name, type, A and AAAA addresses through a compression pointer', () => {
    const q = buildQuery(0xbeef, 'www.example.org', TYPE_A);
    assert.deepEqual(parseDns(q), { id: 0xbeef, response: false, opcode: 0, rcode: 0, name: 'www.example.org', qtype: TYPE_A, answers: [] });
    assert.deepEqual(parseDns(buildResponse(q))?.answers, [ANSWER_A]);
    assert.deepEqual(parseDns(buildResponse(buildQuery(1, 'v6.example', TYPE_AAAA)))?.answers, [ANSWER_AAAA]);
    const nx = parseDns(buildResponse(buildQuery(2, 'nx-a.example', TYPE_A)));
    assert.deepEqual([nx?.response, nx?.rcode, nx?.answers], [true, 3, []]);
  });

  test('names: the root, escapes, and pointers that loop or point forward are refused', () => {
    assert.deepEqual(readName(Buffer.from([0]), 0), { name: '', next: 1 });
    assert.equal(readName(Buffer.from([3, 0x61, 0x2e, 0x07, 0]), 0)?.name, 'a\\.\\007');
    // a pointer to itself, and one to a later offset
    assert.equal(readName(Buffer.from([0xc0, 0x00]), 0), undefined);
    assert.equal(readName(Buffer.from([0xc0, 0x02, 0]), 0), undefined);
    // a label followed by a pointer back to that label: bounded by the name length, not an endless loop
    assert.equal(readName(Buffer.from([1, 0x61, 0xc0, 0x00]), 0), undefined);
    // a cut message
    assert.equal(parseDns(buildQuery(1, 'example.com', TYPE_A).subarray(0, 20)), undefined);
  });

  test('never throws, and ends, on random bytes', () => {
    fc.assert(fc.property(bytes, (b) => {
      const m = parseDns(b);
      if (m) assert.ok(m.name.length <= 4 * 255 && m.answers.length <= 64);
    }), { numRuns: RUNS });
  });

  test('never throws on mutated responses', () => {
    fc.assert(fc.property(mutationsOf(buildResponse(buildQuery(9, 'mutated.example.net', TYPE_AAAA))), (b) => {
      parseDns(b);
    }), { numRuns: RUNS });
  });
});

describe('IP and transport headers', () => {
  test('IPv6 text as RFC 5952 writes it', () => {
    const v6 = (hex: string) => formatIpv6(Buffer.from(hex, 'hex'), 0);
    assert.equal(v6('00000000000000000000000000000001'), '::1');
    assert.equal(v6('20010db8000000000000000000000053'), '2001:db8::53');
    assert.equal(v6('20010db8000100000001000000000001'), '2001:db8:1:0:1::1');
    assert.equal(v6('00000000000000000000ffff7f000001'), '::ffff:127.0.0.1');
    assert.equal(v6('fe800000000000000000000000000000'), 'fe80::');
  });

  test('never throws on random bytes, nor on random bytes behind an IPv4 or IPv6 version nibble', () => {
    fc.assert(fc.property(bytes, fc.constantFrom(0x45, 0x60, 0x4f), (b, first) => {
      parseFlow(b);
      const c = Buffer.from(b);
      if (c.length) c[0] = first;
      const f = parseFlow(c);
      if (f) assert.ok(f.payload.length <= c.length);
    }), { numRuns: RUNS });
  });
});

/** The first flight of Node's TLS client, as a TCP server receives it. */
async function realClientHello(servername: string): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const received = once(server, 'connection').then(async ([s]) => {
      const socket = s as net.Socket;
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      socket.destroy();
      return chunk;
    });
    const client = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername, rejectUnauthorized: false });
    client.on('error', () => {}); // the server hangs up mid-handshake on purpose
    const hello = await received;
    client.destroy();
    return hello;
  } finally {
    server.close();
  }
}

describe('TLS ClientHello parser', () => {
  test("the server_name of Node's ClientHello; a record that is not one is refused", async () => {
    const hello = await realClientHello('sni-parser.example');
    assert.equal(parseSni(hello), 'sni-parser.example');
    assert.equal(parseSni(hello.subarray(0, 40)), undefined, 'cut before the extensions');
    assert.equal(parseSni(Buffer.from('GET / HTTP/1.1\r\n')), undefined);
  });

  test('never throws on random bytes, nor on mutated ClientHellos', async () => {
    fc.assert(fc.property(bytes, (b) => {
      parseSni(b);
      const c = Buffer.concat([Buffer.from([0x16, 3, 1, 0, 0, 1]), Buffer.from(b)]);
      const name = parseSni(c);
      if (name !== undefined) assert.ok(name.length <= 4 * c.length);
    }), { numRuns: RUNS });
    const hello = await realClientHello('mutated.example');
    fc.assert(fc.property(mutationsOf(hello), (b) => {
      parseSni(b);
    }), { numRuns: RUNS });
  });
});
