/**
 * A node's results through the API server: the agent packs its output folder
 * (raw/, summary.json, the node's own artifacts), gzips it, and cuts it into
 * ConfigMaps small enough for etcd (binaryData, CHUNK_BYTES each), owned by the
 * GadgetRun so that deleting the run deletes them. The CLI lists them by label,
 * joins, unpacks into DIR/<node>/.
 * Pack format: for each file `<relative path>\0<size>\n<bytes>`; paths are
 * checked on unpack so a chunk cannot write outside the node's folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { Api } from './client.ts';
import { API_VERSION, KIND, NAMESPACE, type GadgetRun } from './crd.ts';

/** ConfigMaps hold at most 1 MiB; base64 in etcd adds a third: stay well under both. */
export const CHUNK_BYTES = 512 * 1024;
/** past this a node's results are refused (50 MiB compressed): narrow the recipe's filters */
export const MAX_CHUNKS = 100;
export const RUN_LABEL = 'gadget-run.dev/run';
export const NODE_LABEL = 'gadget-run.dev/node';
const NODE_ANNOTATION = 'gadget-run.dev/node';
const INDEX_ANNOTATION = 'gadget-run.dev/chunk';

export function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    // staging folders of a run that was stopped (.capture-*, .evaluate-*) are not results
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

export function pack(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const rel of listFiles(dir)) {
    const data = fs.readFileSync(path.join(dir, rel));
    parts.push(Buffer.from(`${rel}\0${data.length}\n`), data);
  }
  return zlib.gzipSync(Buffer.concat(parts), { level: 6 });
}

export function unpack(gz: Buffer, dir: string): string[] {
  const buf = zlib.gunzipSync(gz);
  const files: string[] = [];
  let at = 0;
  while (at < buf.length) {
    const nul = buf.indexOf(0, at);
    const nl = buf.indexOf(10, nul);
    if (nul < 0 || nl < 0) throw new Error('results: a truncated pack (the chunks do not join up)');
    const rel = buf.toString('utf8', at, nul);
    const size = Number(buf.toString('utf8', nul + 1, nl));
    const target = path.resolve(dir, rel);
    if (!target.startsWith(path.resolve(dir) + path.sep) || !Number.isSafeInteger(size)) throw new Error(`results: refusing the entry ${JSON.stringify(rel)}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, buf.subarray(nl + 1, nl + 1 + size));
    files.push(rel);
    at = nl + 1 + size;
  }
  return files;
}

/** Label values are ≤ 63 characters; node names may be longer. */
export function nodeKey(node: string): string {
  return node.length <= 63 ? node : createHash('sha256').update(node).digest('hex').slice(0, 63);
}

function chunkName(run: string, node: string, i: number): string {
  const base = `${run}-${nodeKey(node)}`.slice(0, 240);
  return `${base}-${i}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-');
}

/** Writes the node's results; returns how many chunks and compressed bytes. */
export async function uploadResults(api: Api, run: GadgetRun, node: string, dir: string): Promise<{ chunks: number; bytes: number }> {
  const gz = pack(dir);
  const chunks = Math.max(1, Math.ceil(gz.length / CHUNK_BYTES));
  if (chunks > MAX_CHUNKS) throw new Error(`the results are ${gz.length} bytes compressed, more than ${MAX_CHUNKS} ConfigMaps of ${CHUNK_BYTES}: narrow the recipe's filters or lower max_bytes`);
  for (let i = 0; i < chunks; i++) {
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: chunkName(run.metadata.name, node, i),
        namespace: NAMESPACE,
        labels: { [RUN_LABEL]: run.metadata.name, [NODE_LABEL]: nodeKey(node) },
        annotations: { [NODE_ANNOTATION]: node, [INDEX_ANNOTATION]: `${i}/${chunks}` },
        // garbage-collected with the run
        ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: run.metadata.name, uid: run.metadata.uid! }],
      },
      binaryData: { 'results.gz': gz.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES).toString('base64') },
    };
    await api.count('create configmaps', () => api.core.createNamespacedConfigMap({ namespace: NAMESPACE, body }));
  }
  return { chunks, bytes: gz.length };
}

/** Every node's results of a run, unpacked into dir/<node>/; returns the nodes found. */
export async function downloadResults(api: Api, runName: string, dir: string): Promise<Map<string, string[]>> {
  const list = await api.count('list configmaps', () => api.core.listNamespacedConfigMap({ namespace: NAMESPACE, labelSelector: `${RUN_LABEL}=${runName}` }));
  const byNode = new Map<string, { i: number; n: number; data: Buffer }[]>();
  for (const cm of list.items) {
    const node = cm.metadata?.annotations?.[NODE_ANNOTATION];
    const [i, n] = (cm.metadata?.annotations?.[INDEX_ANNOTATION] ?? '').split('/').map(Number);
    const data = cm.binaryData?.['results.gz'];
    if (!node || data === undefined || !(n > 0)) continue;
    if (!byNode.has(node)) byNode.set(node, []);
    byNode.get(node)!.push({ i, n, data: Buffer.from(data, 'base64') });
  }
  const out = new Map<string, string[]>();
  for (const [node, parts] of byNode) {
    parts.sort((a, b) => a.i - b.i);
    if (parts.length !== parts[0].n) throw new Error(`results of node ${node}: ${parts.length} of ${parts[0].n} chunks found`);
    out.set(node, unpack(Buffer.concat(parts.map((p) => p.data)), path.join(dir, safeNodeDir(node))));
  }
  return out;
}

/** A node name as a folder name: node names are DNS subdomains already; anything else is replaced. */
export function safeNodeDir(node: string): string {
  const d = node.replace(/[^A-Za-z0-9._-]/g, '_');
  return d === '.' || d === '..' || d === 'raw' ? `node-${d}` : d;
}
