/**
 * Big results bypass etcd. A node whose packed result is larger than the run's
 * inline limit (cluster.inline_limit / --inline-limit, default 1 MiB) does not
 * cut it into ConfigMaps: its agent serves the one file over HTTP on the pod's
 * loopback (127.0.0.1, an ephemeral port), and the CLI fetches it through the
 * API server's port-forward subresource of the agent's pod, with the caller's
 * own credentials and RBAC (create/get pods/portforward in `gadget`). Nothing
 * else reaches the server: it listens on loopback only, so off the node only
 * the kubelet's port-forward (which the API server authorises) gets to it.
 *
 * The server serves exactly one file: GET /runs/<run>/<node key>/results.gz,
 * with the run's fetch token in the x-gadget-run-token header (the CLI made the
 * token and put only its sha256 in the GadgetRun's spec, so reading the run
 * does not give it). Any other method is 405, any other path 404 (no path is
 * resolved against a folder: a traversal is just another path), a wrong or
 * missing token 403. It stops serving (and removes the file) once a GET sent
 * the whole file, or after its TTL. The node's report (chunk 0, a ConfigMap)
 * says where the file is and its sha256; the CLI checks both size and hash.
 */
import fs from 'node:fs';
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { PassThrough, Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PortForward, type KubeConfig } from '@kubernetes/client-node';

export const TOKEN_HEADER = 'x-gadget-run-token';
/** how long an agent keeps a result the CLI has not fetched */
export const SERVE_TTL_MS = 10 * 60_000;

/** Where a node's big result waits for the CLI: in its report (NodeReport.served). */
export interface ServedResult {
  /** the agent's pod (namespace gadget) and the port on its loopback */
  pod: string;
  port: number;
  path: string;
  bytes: number;
  sha256: string;
  /** when the agent stops serving it */
  expiresAt: string;
}

export const servedPath = (run: string, nodeKey: string) => `/runs/${encodeURIComponent(run)}/${encodeURIComponent(nodeKey)}/results.gz`;

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export interface ServeOptions {
  file: string;
  path: string;
  bytes: number;
  sha256: string;
  /** sha256 (hex) of the run's fetch token: spec.fetchTokenHash */
  tokenHash: string;
  pod: string;
  ttlMs?: number;
  /** 127.0.0.1 unless a test says otherwise */
  host?: string;
  log?: (line: string) => void;
}

/** One node's result file, served once to the holder of the run's token. */
export class ResultServer {
  private readonly server: http.Server;
  private timer?: NodeJS.Timeout;
  private busy = false;
  private closed = false;
  /** resolves when the server stopped serving: fetched, expired, or closed */
  readonly done: Promise<'fetched' | 'expired' | 'closed'>;
  private finish!: (how: 'fetched' | 'expired' | 'closed') => void;

  private constructor(private readonly opts: ServeOptions) {
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.server = http.createServer((req, res) => this.handle(req, res));
    // a client that stalls must not hold the file past the TTL
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 10_000;
  }

  static async start(opts: ServeOptions): Promise<{ server: ResultServer; served: ServedResult }> {
    const s = new ResultServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, opts.host ?? '127.0.0.1', () => resolve());
    });
    const ttl = opts.ttlMs ?? SERVE_TTL_MS;
    s.timer = setTimeout(() => s.close('expired'), ttl);
    s.timer.unref();
    const port = (s.server.address() as { port: number }).port;
    return { server: s, served: { pod: opts.pod, port, path: opts.path, bytes: opts.bytes, sha256: opts.sha256, expiresAt: new Date(Date.now() + ttl).toISOString() } };
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  private refuse(res: http.ServerResponse, code: number, why: string, extra: Record<string, string> = {}): void {
    res.writeHead(code, { 'content-type': 'text/plain', connection: 'close', ...extra });
    res.end(`${why}\n`);
  }

  private tokenOk(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string' || !header) return false;
    const got = Buffer.from(tokenHash(header), 'hex');
    const want = Buffer.from(this.opts.tokenHash, 'hex');
    return want.length === got.length && timingSafeEqual(got, want);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.closed) return this.refuse(res, 410, 'no longer served');
    if (req.method !== 'GET') return this.refuse(res, 405, 'only GET', { allow: 'GET' });
    // the raw target, compared whole: nothing is resolved against a folder
    if (req.url !== this.opts.path) return this.refuse(res, 404, 'not this run’s result');
    if (!this.tokenOk(req.headers[TOKEN_HEADER])) return this.refuse(res, 403, 'a wrong or missing run token');
    if (this.busy) return this.refuse(res, 409, 'already being fetched');
    this.busy = true;
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(this.opts.bytes), 'x-content-sha256': this.opts.sha256, connection: 'close' });
    const file = fs.createReadStream(this.opts.file);
    pipeline(file, res).then(
      () => {
        this.opts.log?.(`result ${this.opts.path} fetched (${this.opts.bytes} bytes)`);
        this.close('fetched');
      },
      (err: Error) => {
        // a fetch that broke off: the file stays until the TTL, for another try
        this.opts.log?.(`result ${this.opts.path}: the fetch broke off (${err.message})`);
        this.busy = false;
      },
    );
  }

  /** Stops serving and removes the file. */
  close(how: 'fetched' | 'expired' | 'closed' = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.server.close();
    // a fetch that just ended closes its own connection (connection: close); a destroy now could cut its last bytes
    if (how !== 'fetched') this.server.closeAllConnections?.();
    fs.rmSync(this.opts.file, { force: true });
    this.finish(how);
  }
}

/**
 * A TCP connection to `port` on the pod's loopback through the API server's
 * pods/portforward (WebSocket, v4.channel.k8s.io), as a Duplex an http.request
 * can use as its socket.
 */
export function portForwardSocket(kc: KubeConfig, namespace: string, pod: string, port: number): Duplex {
  const toPod = new PassThrough();
  let ws: { close(): void; addEventListener(ev: string, fn: (e: unknown) => void): void } | undefined;
  let errText = '';
  const conn = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      toPod.write(chunk, cb);
    },
    final(cb) {
      cb();
    },
    destroy(err, cb) {
      ws?.close();
      cb(err);
    },
  });
  const fromPod = new Writable({
    write(chunk: Buffer, _enc, cb) {
      conn.push(chunk);
      cb();
    },
  });
  const errors = new Writable({
    write(chunk: Buffer, _enc, cb) {
      errText += chunk.toString('utf8');
      cb();
    },
  });
  new PortForward(kc, true)
    .portForward(namespace, pod, [port], fromPod, errors, toPod)
    .then((socket) => {
      ws = socket as unknown as typeof ws;
      // the caller gave up (destroyed the socket) before the WebSocket opened: close it now, or it stays open
      if (conn.destroyed) return ws!.close();
      ws!.addEventListener('close', () => {
        if (errText.trim()) conn.destroy(new Error(`port-forward to ${namespace}/${pod}:${port}: ${errText.trim()}`));
        else conn.push(null);
      });
      ws!.addEventListener('error', (e) => conn.destroy(new Error(`port-forward to ${namespace}/${pod}:${port}: ${(e as { message?: string }).message ?? e}`)));
    })
    .catch((err: unknown) => conn.destroy(new Error(`port-forward to ${namespace}/${pod}:${port}: ${portForwardError(err)}`)));
  return conn;
}

function portForwardError(err: unknown): string {
  const e = err as { message?: string; target?: unknown };
  // the ws library's error event for a refused upgrade: "Unexpected server response: 403"
  return e?.message ?? String(err);
}

/**
 * GETs `path` from the agent's server through the port-forward and writes the
 * body to `file`; fails (and says why) on any answer but 200, or when the size
 * or the sha256 is not the one the node's report gave.
 */
export async function fetchServed(kc: KubeConfig, served: ServedResult, token: string, file: string, namespace = 'gadget'): Promise<void> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({
      method: 'GET',
      host: 'localhost',
      path: served.path,
      headers: { [TOKEN_HEADER]: token, connection: 'close' },
      // no agent: createConnection is used only without one
      createConnection: () => portForwardSocket(kc, namespace, served.pod, served.port) as unknown as import('node:net').Socket,
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) {
    let body = '';
    for await (const c of res) body += c;
    throw new Error(`the agent ${served.pod} answered ${res.statusCode}: ${body.trim().slice(0, 200)}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  res.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  });
  await pipeline(res, fs.createWriteStream(file, { mode: 0o600 }));
  const sha256 = hash.digest('hex');
  if (bytes !== served.bytes || sha256 !== served.sha256) {
    throw new Error(`its served result does not match its report: ${bytes} bytes with sha256 ${sha256.slice(0, 16)}…, the report says ${served.bytes} bytes with sha256 ${served.sha256.slice(0, 16)}…`);
  }
}
