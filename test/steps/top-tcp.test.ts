import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { topTcp as def } from '../../src/gadgets/top/tcp.ts';
import { eachVariant, kernelSkip } from '../helpers/kernel.ts';
import { stepContext, traceAllWhile, type Event } from '../helpers/session.ts';

/** Reads from `socket` until `n` bytes have arrived (then the iterator destroys it). */
async function receive(socket: net.Socket, n: number): Promise<void> {
  let got = 0;
  for await (const chunk of socket) {
    got += (chunk as Buffer).length;
    if (got >= n) return;
  }
  throw new Error(`the connection closed after ${got} of ${n} bytes`);
}

/**
 * A loopback connection in this process: the client sends `a` bytes, the
 * server `b`; both ends have read everything before the sockets close.
 * Returns the ports (client's local port, server's port).
 */
async function transfer(host: string, a: number, b: number): Promise<{ client: number; server: number }> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  try {
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const client = net.connect(port, host);
    await once(client, 'connect');
    const [peer] = await accepted;
    // before the reads: leaving a socket's async iterator destroys it
    const ports = { client: client.localPort!, server: port };
    client.write(Buffer.alloc(a, 0x61));
    peer.write(Buffer.alloc(b, 0x62));
    await Promise.all([receive(peer, a), receive(client, b)]);
    client.destroy();
    peer.destroy();
    return ports;
  } finally {
    server.close();
  }
}

const conn = (rows: Event[], sport: number, dport: number) => rows.filter((r) => r.sport === sport && r.dport === dport);

describe('top/tcp', { skip: kernelSkip(def) }, () => {
  test('a loopback transfer over 127.0.0.1 and ::1: exact bytes each way per end; family filters in the kernel', async (t) => {
    const A = 300_000;
    const B = 70_001;
    const opts = { filter: `pid==${process.pid}`, options: { interval: '1h' } };
    let v4 = { client: 0, server: 0 };
    let v6 = { client: 0, server: 0 };
    const [both, only6] = await traceAllWhile(
      [
        [def, stepContext(t, { ...opts, id: 'both' })],
        [def, stepContext(t, { ...opts, id: 'only6', params: { family: 6 } })],
      ],
      async () => {
        v4 = await transfer('127.0.0.1', A, B);
        v6 = await transfer('::1', B, A);
      },
    );
    const pick = (r: Event) => [r.ipversion, r.saddr, r.daddr, r.sent, r.received, r.pid, r.comm];
    assert.deepEqual(conn(both.events, v4.client, v4.server).map(pick), [[4, '127.0.0.1', '127.0.0.1', A, B, process.pid, 'node']]);
    assert.deepEqual(conn(both.events, v4.server, v4.client).map(pick), [[4, '127.0.0.1', '127.0.0.1', B, A, process.pid, 'node']]);
    assert.deepEqual(conn(both.events, v6.client, v6.server).map(pick), [[6, '::1', '::1', B, A, process.pid, 'node']]);
    assert.deepEqual(conn(both.events, v6.server, v6.client).map(pick), [[6, '::1', '::1', A, B, process.pid, 'node']]);
    const row = conn(both.events, v4.client, v4.server)[0];
    assert.ok((row.mntns_id as number) > 0 && (row.cgroup_id as number) > 0);
    const sent = both.events.map((e) => e.sent as number);
    assert.deepEqual(sent, [...sent].sort((x, y) => y - x), 'rows sorted by -sent');
    assert.deepEqual(only6.events.filter((e) => e.ipversion !== 6), [], 'family: 6 keeps IPv4 out');
    assert.equal(conn(only6.events, v6.client, v6.server).length, 1);
    assert.equal(both.outcome.lost, 0);
  });

  test('every hook variant this kernel runs: the same bytes per connection, side by side', async (t) => {
    const { here, notHere } = await eachVariant(def);
    for (const why of notHere) t.diagnostic(`not on this kernel: ${why}`);
    assert.ok(here.length >= 1, 'the gadget is supported here, so one variant at least runs');
    const A = 100_003;
    const B = 20_011;
    let ports = { client: 0, server: 0 };
    const traced = await traceAllWhile(here.map(([name, d]) => [d, stepContext(t, { id: name.replace(/\W+/g, '_'), filter: `pid==${process.pid}`, options: { interval: '1h' } })]), async () => {
      ports = await transfer('127.0.0.1', A, B);
    });
    const pick = (r: Event) => [r.sport, r.dport, r.sent, r.received, r.pid, r.comm, r.mntns_id, r.cgroup_id];
    const rows = traced.map(({ events }) => [...conn(events, ports.client, ports.server), ...conn(events, ports.server, ports.client)].map(pick));
    assert.deepEqual(rows[0].map((r) => r.slice(0, 4)), [[ports.client, ports.server, A, B], [ports.server, ports.client, B, A]], here[0][0]);
    here.forEach(([name], i) => assert.deepEqual(rows[i], rows[0], `${name} and ${here[0][0]} disagree`));
    traced.forEach(({ outcome }, i) => assert.equal(outcome.lost, 0, here[i][0]));
  });
});
