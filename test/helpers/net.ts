/** Loopback sockets the socket gadgets' tests make (127.0.0.1 and ::1 only). */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';

export const LOOPBACKS = [
  { host: '127.0.0.1', ipversion: 4, udp: 'udp4' },
  { host: '::1', ipversion: 6, udp: 'udp6' },
] as const;

/** A TCP server listening on host, port 0 unless given; closed after the test. Accepted sockets are kept in `accepted`. */
export async function tcpServer(t: TestContext, host: string, port = 0): Promise<{ server: net.Server; port: number; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  server.listen(port, host);
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

/** A UDP socket bound to host, port 0; closed after the test. */
export async function udpSocket(t: TestContext, type: 'udp4' | 'udp6', host: string): Promise<{ socket: dgram.Socket; port: number }> {
  const socket = dgram.createSocket(type);
  socket.bind(0, host);
  await once(socket, 'listening');
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { socket, port: socket.address().port };
}

/** The error a listen on a taken port fails with (the bind's EADDRINUSE). */
export async function listenFails(host: string, port: number): Promise<NodeJS.ErrnoException> {
  const server = net.createServer();
  server.listen(port, host);
  const [err] = (await once(server, 'error')) as [NodeJS.ErrnoException];
  return err;
}

/** A port nothing listens on right now: bound once by the kernel's choice, then released. */
export async function freePort(host: string): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
