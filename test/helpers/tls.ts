/** A TLS server and client on loopback for the trace/sni tests, with a self-signed certificate made by openssl. */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import tls from 'node:tls';
import { tempDir } from './session.ts';

export interface KeyPair {
  key: Buffer;
  cert: Buffer;
}

export function selfSignedCert(t: TestContext): KeyPair {
  const dir = tempDir(t, 'gadget-tls-');
  const [key, cert] = [path.join(dir, 'k'), path.join(dir, 'c')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=x', '-keyout', key, '-out', cert, '-days', '1'], { stdio: 'pipe' });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

/** A TLS server on `address`, an ephemeral port; closed after the test. */
export async function startTlsServer(t: TestContext, pair: KeyPair, address = '127.0.0.1'): Promise<{ address: string; port: number }> {
  const server = tls.createServer(pair, (s) => s.end());
  server.on('tlsClientError', () => {}); // a client that hangs up early is not the test's concern
  server.listen(0, address);
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { address, port: (server.address() as { port: number }).port };
}

/** Connect, finish the handshake with `servername` as SNI, hang up; resolves with the client's local port. */
export async function tlsHello(server: { address: string; port: number }, servername: string): Promise<number> {
  const socket = tls.connect({ host: server.address, port: server.port, servername, rejectUnauthorized: false });
  try {
    await Promise.race([once(socket, 'secureConnect'), new Promise((_, reject) => setTimeout(() => reject(new Error(`no TLS handshake with ${server.address}:${server.port} in 30 s`)), 30_000))]);
    return socket.localPort!;
  } finally {
    socket.destroy();
  }
}
