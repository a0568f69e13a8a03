/**
 * Big results bypass etcd (src/k8s/serve.ts), the parts that need no cluster: the
 * agent's one-file server refuses every method but GET, every path but its run's,
 * every request without the run's token, serves once and then stops, or stops at
 * its TTL; uploadResults serves a pack above the inline limit (chunk 0 holds the
 * report alone) and uploads one under it; the CLI's download checks the sha256 of
 * both, and fetches several nodes' served results at once, never more than asked.
 * test/k8s/served.test.ts does the same through a real API server's port-forward.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import fc from 'fast-check';
import { KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { Api } from '../../src/k8s/client.ts';
import { unpackResults, uploadResults, type ServeChoice } from '../../src/k8s/results.ts';
import { fetchServed, ResultServer, servedPath, tokenHash, TOKEN_HEADER, type ServedResult } from '../../src/k8s/serve.ts';
import type { GadgetRun } from '../../src/k8s/crd.ts';
import { captured } from '../runner/evaluate-helpers.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-serve-'));
const TOKEN = 'the-run-token';

/** One raw request (the target sent as written, no client normalisation); status and body. */
function raw(port: number, request: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(request));
    let text = '';
    s.on('data', (d) => (text += d.toString('latin1')));
    s.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    s.on('error', reject);
  });
}
const get = (port: number, target: string, token: string | null = TOKEN, method = 'GET') =>
  raw(port, `${method} ${target} HTTP/1.1\r\nhost: x\r\n${token !== null ? `${TOKEN_HEADER}: ${token}\r\n` : ''}connection: close\r\n\r\n`);

async function serving(content: Buffer, ttlMs?: number) {
  const file = path.join(tmp(), 'result.gz');
  fs.writeFileSync(file, content);
  const sha256 = crypto.createHash('sha256').update(content).digest('hex');
  const p = servedPath('run-a', 'node-1');
  const { server, served } = await ResultServer.start({ file, path: p, bytes: content.length, sha256, tokenHash: tokenHash(TOKEN), pod: 'agent-x', ...(ttlMs ? { ttlMs } : {}) });
  return { file, server, served, path: p };
}

test('the agent serves its run’s file to the token holder once, GET only; traversal, other runs, other methods and wrong tokens are refused', async () => {
  const content = crypto.randomBytes(300_000);
  const { file, server, served, path: p } = await serving(content);
  try {
    assert.equal(served.path, '/runs/run-a/node-1/results.gz');
    for (const target of [
      '/runs/run-a/node-1/../../../etc/passwd',
      '/runs/run-a/node-1/%2e%2e/%2e%2e/etc/passwd',
      '/runs/run-a/node-1/results.gz/../../node-2/results.gz',
      '/runs/run-b/node-1/results.gz',
      '/runs/run-a/node-2/results.gz',
      '/runs/run-a/node-1/results.gz?x=1',
      `${p}/`,
      '//etc/passwd',
      '/',
      'http://127.0.0.1/etc/passwd',
    ]) {
      assert.equal((await get(server.port, target)).status, 404, target);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) assert.equal((await get(server.port, p, TOKEN, method)).status, 405, method);
    assert.equal((await get(server.port, p, null)).status, 403);
    assert.equal((await get(server.port, p, 'not-the-token')).status, 403);
    // the hash is not the token: reading the GadgetRun does not let one fetch
    assert.equal((await get(server.port, p, tokenHash(TOKEN))).status, 403);
    assert.ok(fs.existsSync(file), 'refusals leave the file');
    const ok = await new Promise<Buffer>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: server.port, path: p, headers: { [TOKEN_HEADER]: TOKEN } }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['x-content-sha256'], served.sha256);
        const parts: Buffer[] = [];
        res.on('data', (c) => parts.push(c));
        res.on('end', () => resolve(Buffer.concat(parts)));
      }).on('error', reject);
    });
    assert.deepEqual(ok, content);
    assert.equal(await server.done, 'fetched');
    assert.ok(!fs.existsSync(file), 'the file is gone once fetched');
    // and nothing is served any more
    await assert.rejects(get(served.port, p));
  } finally {
    server.close();
  }
});

test('a result nobody fetches is removed at its TTL', async () => {
  const { file, server } = await serving(Buffer.from('x'), 200);
  assert.equal(await server.done, 'expired');
  assert.ok(!fs.existsSync(file));
});

test('property: no request target but the run’s own path is served', async () => {
  const { server, path: p } = await serving(Buffer.from('secret'));
  try {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.webPath(), fc.string({ minLength: 1, maxLength: 60 }).map((s) => `/${encodeURI(s)}`), fc.constantFrom('..', '%2e%2e', '/runs/run-a/').chain((seg) => fc.webPath().map((w) => `${p}${seg}${w}`))), async (target) => {
        fc.pre(target !== p && /^[\x21-\x7e]+$/.test(target));
        const r = await get(server.port, target);
        assert.notEqual(r.status, 200, target);
        assert.ok(!r.body.includes('secret'), target);
      }),
      { numRuns: 60 },
    );
  } finally {
    server.close();
  }
});

function offlineApi(created: V1ConfigMap[]): Api {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const api = new Api(kc);
  (api as { core: unknown }).core = { createNamespacedConfigMap: async ({ body }: { body: V1ConfigMap }) => void created.push(body) };
  return api;
}

test('uploadResults: above the inline limit the pack is served and chunk 0 holds the report alone; under it, ConfigMaps; the download checks sha256 of both', async () => {
  const run = { apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', metadata: { name: 'r', uid: 'u' }, spec: { recipe: 'x' } } as GadgetRun;
  const src = tmp();
  captured(src, { s: [] }, ['data']);
  // ~500 KB gzipped (random hex)
  fs.writeFileSync(path.join(src, 'raw', 's.ndjson'), Array.from({ length: 5000 }, () => JSON.stringify({ data: crypto.randomBytes(100).toString('hex') }) + '\n').join(''));
  const work = tmp();
  const servers: ResultServer[] = [];
  const choice = (inlineLimit: number): ServeChoice => ({
    inlineLimit,
    workDir: work,
    serve: async (file, bytes, sha256) => {
      const { server, served } = await ResultServer.start({ file, bytes, sha256, tokenHash: tokenHash(TOKEN), pod: 'p', path: servedPath('r', 'n1') });
      servers.push(server);
      return served;
    },
  });
  const report = (node: string) => (w: { chunks: number; sha256: string; served?: ServedResult; bytes: number }) => ({ node, phase: 'Succeeded' as const, startedAt: 't', chunks: w.chunks, sha256: w.sha256, ...(w.served ? { served: w.served } : {}) });

  // big: 100 KiB limit
  const big: V1ConfigMap[] = [];
  const wb = await uploadResults(offlineApi(big), run, 'n1', src, report('n1'), undefined, undefined, choice(100 * 1024));
  assert.ok(wb.served && wb.bytes > 100 * 1024);
  assert.equal(big.length, 1, 'chunk 0 alone');
  assert.equal(big[0].binaryData, undefined, 'no result bytes in the API server');
  assert.ok(JSON.stringify(big[0]).length < 4096);
  const rep = JSON.parse(big[0].data!['result.json']);
  assert.equal(rep.served.sha256, wb.sha256);
  // the fetch the CLI does through the port-forward, here straight to the server
  const fetchLocal = (node: string, served: ServedResult, file: string) =>
    new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: served.port, path: served.path, headers: { [TOKEN_HEADER]: TOKEN } }, (res) => res.pipe(fs.createWriteStream(file)).on('finish', resolve)).on('error', reject);
    });
  const outB = tmp();
  const { downloadFrom } = await sinkHelpers();
  const gotB = await downloadFrom(big, outB, fetchLocal);
  assert.equal(gotB.get('n1')!.error, undefined);
  assert.equal(gotB.get('n1')!.servedBytes, wb.bytes);
  assert.deepEqual(fs.readFileSync(path.join(outB, 'n1', 'raw', 's.ndjson')), fs.readFileSync(path.join(src, 'raw', 's.ndjson')));
  assert.equal(await servers[0].done, 'fetched');
  assert.deepEqual(fs.readdirSync(work), [], 'the staged pack is gone once fetched');

  // small: the default 1 MiB
  const small: V1ConfigMap[] = [];
  const ws = await uploadResults(offlineApi(small), run, 'n2', src, report('n2'), undefined, undefined, choice(1024 * 1024));
  assert.equal(ws.served, undefined);
  assert.ok(ws.chunks >= 1 && small.every((c) => c.binaryData || c.data));
  assert.deepEqual(fs.readdirSync(work), [], 'the staged pack is removed after the upload');
  const gotS = await unpackResults(small, tmp());
  assert.equal(gotS.get('n2')!.error, undefined);
  // a chunk changed in the API server: the sha256 in the report refuses it
  const tampered = small.map((c) => structuredClone(c));
  const last = tampered.find((c) => c.binaryData)!;
  const bytes = Buffer.from(last.binaryData!['results.gz'], 'base64');
  bytes[bytes.length - 1] ^= 1;
  last.binaryData!['results.gz'] = bytes.toString('base64');
  assert.match((await unpackResults(tampered, tmp())).get('n2')!.error!, /sha256 .* its report says .*refusing them/);
  // a served result whose bytes are not the report's: the CLI's fetch fails, the node is an error
  const bad = await downloadFrom(big, tmp(), async () => {
    throw new Error('its served result does not match its report');
  });
  assert.match(bad.get('n1')!.error!, /could not be fetched from its agent: its served result does not match/);
  for (const s of servers) s.close();
});

/** downloadResults over a fixed list of ConfigMaps (one page), with a fetcher. */
async function sinkHelpers() {
  const { downloadResults } = await import('../../src/k8s/results.ts');
  return {
    downloadFrom: (items: V1ConfigMap[], dir: string, fetch: Parameters<typeof downloadResults>[3], concurrency?: number) => {
      const api = offlineApi([]);
      (api as { core: unknown }).core = { listNamespacedConfigMap: async () => ({ items, metadata: {} }) };
      return downloadResults(api, 'r', dir, fetch, undefined, concurrency);
    },
  };
}

/**
 * The kubelet's side of a WebSocket port-forward (v4.channel.k8s.io, as in
 * kubelet/cri/streaming/portforward/websocket.go): each channel first carries the
 * port (2 bytes, little-endian); channel 0 is the data, channel 1 the errors; the
 * stream ends when the pod's connection does. The real API server and kubelet are
 * test/k8s/served.test.ts; this checks the client's framing where no cluster runs.
 */
async function fakePortForward(): Promise<{ kc: KubeConfig; close(): void; paths: string[] }> {
  const { createRequire } = await import('node:module');
  const { WebSocketServer } = createRequire(import.meta.url)('ws');
  const paths: string[] = [];
  const server = http.createServer();
  const wss = new WebSocketServer({ server, handleProtocols: (protocols: Set<string>) => (protocols.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false) });
  wss.on('connection', (ws: any, req: http.IncomingMessage) => {
    paths.push(req.url!);
    const port = Number(new URL(req.url!, 'http://x').searchParams.get('ports'));
    const p = Buffer.alloc(2);
    p.writeUInt16LE(port);
    ws.send(Buffer.concat([Buffer.from([0]), p]));
    ws.send(Buffer.concat([Buffer.from([1]), p]));
    const tcp = net.connect(port, '127.0.0.1');
    tcp.on('data', (d) => ws.send(Buffer.concat([Buffer.from([0]), d])));
    tcp.on('end', () => ws.close());
    tcp.on('error', (e) => {
      ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(e.message)]));
      ws.close();
    });
    ws.on('message', (m: Buffer) => {
      if (m[0] === 0) tcp.write(m.subarray(1));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, skipTLSVerify: true }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return { kc, paths, close: () => { wss.close(); server.close(); } };
}

test('fetchServed over a port-forward stream: the body lands whole with its sha256; a mismatch, a refusal and a dead port are errors that say so', async () => {
  const content = crypto.randomBytes(2_000_000);
  const pf = await fakePortForward();
  try {
    const { server, served } = await serving(content);
    const out = path.join(tmp(), 'got.gz');
    await fetchServed(pf.kc, served, TOKEN, out);
    assert.deepEqual(fs.readFileSync(out), content);
    assert.equal(pf.paths[0], `/api/v1/namespaces/gadget/pods/agent-x/portforward?ports=${served.port}`);
    assert.equal(await server.done, 'fetched');
    // a report that says other bytes
    const second = await serving(content);
    await assert.rejects(fetchServed(pf.kc, { ...second.served, sha256: '0'.repeat(64) }, TOKEN, out), /does not match its report/);
    second.server.close();
    // the wrong token: the agent's answer, named
    const third = await serving(content);
    await assert.rejects(fetchServed(pf.kc, third.served, 'nope', out), /answered 403: a wrong or missing run token/);
    third.server.close();
    // nothing listening there any more
    await assert.rejects(fetchServed(pf.kc, served, TOKEN, out));
  } finally {
    pf.close();
  }
});

test('downloadResults fetches served results through port-forwards N at a time, never more; each is checked against its report and fails alone', async () => {
  const run = { apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', metadata: { name: 'r', uid: 'u' }, spec: { recipe: 'x' } } as GadgetRun;
  const pf = await fakePortForward();
  const servers: ResultServer[] = [];
  try {
    const nodes = Array.from({ length: 7 }, (_, i) => `n${i}`);
    const items: V1ConfigMap[] = [];
    const srcs = new Map<string, string>();
    for (const node of nodes) {
      const src = tmp();
      captured(src, { s: [] }, ['data']);
      fs.writeFileSync(path.join(src, 'raw', 's.ndjson'), Array.from({ length: 200 }, () => JSON.stringify({ data: crypto.randomBytes(64).toString('hex'), node }) + '\n').join(''));
      srcs.set(node, src);
      const choice: ServeChoice = {
        inlineLimit: 0,
        workDir: tmp(),
        serve: async (file, bytes, sha256) => {
          const { server, served } = await ResultServer.start({ file, bytes, sha256, tokenHash: tokenHash(TOKEN), pod: `agent-${node}`, path: servedPath('r', node) });
          servers.push(server);
          return served;
        },
      };
      // n5's report names another sha256: its bytes must be refused, the others not
      await uploadResults(offlineApi(items), run, node, src, (w) => ({ node, phase: 'Succeeded', startedAt: 't', chunks: w.chunks, sha256: w.sha256, ...(w.served ? { served: node === 'n5' ? { ...w.served, sha256: '0'.repeat(64) } : w.served } : {}) }), undefined, undefined, choice);
    }
    let inFlight = 0;
    let most = 0;
    const started: string[] = [];
    const fetch = async (node: string, served: ServedResult, file: string) => {
      started.push(node);
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        // n2's agent is gone: its fetch fails, nobody else's does
        if (node === 'n2') throw new Error('the agent agent-n2 answered 404: gone');
        await fetchServed(pf.kc, served, TOKEN, file);
      } finally {
        inFlight--;
      }
    };
    const { downloadFrom } = await sinkHelpers();
    const out = tmp();
    const got = await downloadFrom(items, out, fetch, 3);
    assert.equal(most, 3, 'three port-forwards at once, never more');
    assert.deepEqual([...started].sort(), nodes, 'every node fetched once');
    assert.match(got.get('n2')!.error!, /could not be fetched from its agent: the agent agent-n2 answered 404/);
    assert.match(got.get('n5')!.error!, /could not be fetched from its agent: its served result does not match its report/);
    for (const node of nodes.filter((n) => n !== 'n2' && n !== 'n5')) {
      assert.equal(got.get(node)!.error, undefined, node);
      assert.ok(got.get(node)!.servedBytes! > 0);
      assert.deepEqual(fs.readFileSync(path.join(out, node, 'raw', 's.ndjson')), fs.readFileSync(path.join(srcs.get(node)!, 'raw', 's.ndjson')), node);
    }
    assert.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith('.results-')), [], 'no partial download left behind');
    // through the port-forward of each node's own agent pod
    assert.deepEqual(pf.paths.map((p) => /pods\/(agent-n\d)\//.exec(p)![1]).sort(), nodes.filter((n) => n !== 'n2').map((n) => `agent-${n}`));
  } finally {
    for (const s of servers) s.close();
    pf.close();
  }
});

test('eachLimit: at most `limit` at once, every item run even after a failure, the first failure thrown at the end', async () => {
  const { eachLimit } = await import('../../src/util/each-limit.ts');
  await fc.assert(fc.asyncProperty(fc.array(fc.boolean(), { maxLength: 30 }), fc.integer({ min: 1, max: 8 }), async (fails, limit) => {
    let inFlight = 0;
    let most = 0;
    const ran: number[] = [];
    const run = eachLimit(fails.keys(), limit, async (i) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setImmediate(r));
      ran.push(i);
      inFlight--;
      if (fails[i]) throw new Error(`item ${i}`);
    });
    const first = fails.indexOf(true);
    if (first >= 0) await assert.rejects(run, /item \d+/);
    else await run;
    assert.deepEqual([...ran].sort((a, b) => a - b), [...fails.keys()]);
    assert.equal(most, Math.min(limit, fails.length));
  }), { numRuns: 50 });
  await assert.rejects(eachLimit([1], 0, async () => {}), /positive integer/);
});
