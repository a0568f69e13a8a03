/**
 * A node's results through the API server: the agent packs its output folder
 * (raw/, summary.json, the node's own artifacts), gzips it, and cuts it into
 * ConfigMaps small enough for etcd (binaryData, CHUNK_BYTES each), owned by the
 * GadgetRun so that deleting the run deletes them. Chunk 0 is the node's result
 * object: it also holds the node's full answer (data result.json, a NodeReport)
 * and is written last, so once it exists every chunk does. Each node writes its
 * own objects: nothing here contends with another node. The CLI lists them by
 * label, joins, unpacks into DIR/<node>/.
 * Pack format: for each file `<relative path>\0<size>\n<bytes>`; paths are
 * checked on unpack so a chunk cannot write outside the node's folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { apiMessage, reasonOf, statusOf, withRetry, type Api, type RetryOptions } from './client.ts';
import { API_VERSION, KIND, NAMESPACE, type GadgetRun, type NodeReport } from './crd.ts';
import { dnsSubdomain } from '../util/k8s-names.ts';

/** ConfigMaps hold at most 1 MiB; base64 in etcd adds a third: stay well under both. */
export const CHUNK_BYTES = 512 * 1024;
/** past this a node's results are refused (50 MiB compressed): narrow the recipe's filters */
export const MAX_CHUNKS = 100;
export const RUN_LABEL = 'gadget-run.dev/run';
export const NODE_LABEL = 'gadget-run.dev/node';
const NODE_ANNOTATION = 'gadget-run.dev/node';
const INDEX_ANNOTATION = 'gadget-run.dev/chunk';
export const REPORT_KEY = 'result.json';

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
  return `${dnsSubdomain(`${run}-${nodeKey(node)}`, 'results', 240)}-${i}`;
}

/**
 * Writes the node's results (dir: its output folder; none when the run never
 * produced one) and, in chunk 0, its report, made once the chunk count is known.
 * Returns how many chunks and compressed bytes.
 */
export async function uploadResults(
  api: Api,
  run: GadgetRun,
  node: string,
  dir: string | undefined,
  report: (written: { chunks: number; bytes: number }) => NodeReport,
  retry?: RetryOptions,
): Promise<{ chunks: number; bytes: number }> {
  const gz = dir ? pack(dir) : undefined;
  const chunks = gz ? Math.max(1, Math.ceil(gz.length / CHUNK_BYTES)) : 1;
  if (gz && chunks > MAX_CHUNKS) throw new Error(`the results are ${gz.length} bytes compressed, more than ${MAX_CHUNKS} ConfigMaps of ${CHUNK_BYTES}: narrow the recipe's filters or lower max_bytes`);
  const written = { chunks: gz ? chunks : 0, bytes: gz?.length ?? 0 };
  // chunk 0 last: its presence means the node's upload is whole
  for (let i = chunks - 1; i >= 0; i--) {
    // the report counts this create and the status patch that follows it
    const body = resultObject(run, node, i, written.chunks, gz, i === 0 ? report(written) : undefined);
    try {
      await withRetry(api, 'create configmaps', () => api.core.createNamespacedConfigMap({ namespace: NAMESPACE, body }), retry);
    } catch (err) {
      // a retried create whose first attempt landed after all: the name is this node's own
      if (!(statusOf(err) === 409 && reasonOf(err) === 'AlreadyExists')) throw err;
    }
  }
  return written;
}

/** Chunk i of total (0: none, a report alone) of a node's results; chunk 0 carries the report. */
export function resultObject(run: GadgetRun, node: string, i: number, total: number, gz: Buffer | undefined, report?: NodeReport): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: chunkName(run.metadata.name, node, i),
      namespace: NAMESPACE,
      labels: { [RUN_LABEL]: run.metadata.name, [NODE_LABEL]: nodeKey(node) },
      annotations: { [NODE_ANNOTATION]: node, [INDEX_ANNOTATION]: `${i}/${total}` },
      // garbage-collected with the run
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: run.metadata.name, uid: run.metadata.uid! }],
    },
    ...(gz ? { binaryData: { 'results.gz': gz.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES).toString('base64') } } : {}),
    ...(report ? { data: { [REPORT_KEY]: JSON.stringify(report) } } : {}),
  };
}

/** What a node left on the API server: its report and unpacked files, or why they cannot be used. */
export interface NodeDownload {
  report?: NodeReport;
  /** files unpacked into dir/<node>/ (absent: the node sent no results) */
  files?: string[];
  /** the node's results are there but broken (missing chunks, a bad pack) */
  error?: string;
}

/** Every node's results of a run, unpacked into dir/<node>/; one broken node does not stop the others. */
export async function downloadResults(api: Api, runName: string, dir: string): Promise<Map<string, NodeDownload>> {
  const list = await withRetry(api, 'list configmaps', () => api.core.listNamespacedConfigMap({ namespace: NAMESPACE, labelSelector: `${RUN_LABEL}=${runName}` }));
  return unpackResults(list.items, dir);
}

/** The result ConfigMaps of a run, grouped by node, joined and unpacked into dir/<node>/. */
export function unpackResults(items: V1ConfigMap[], dir: string): Map<string, NodeDownload> {
  const byNode = new Map<string, { report?: NodeReport; parts: { i: number; n: number; data: Buffer }[] }>();
  for (const cm of items) {
    const node = cm.metadata?.annotations?.[NODE_ANNOTATION];
    const [i, n] = (cm.metadata?.annotations?.[INDEX_ANNOTATION] ?? '').split('/').map(Number);
    if (!node || !Number.isInteger(i)) continue;
    if (!byNode.has(node)) byNode.set(node, { parts: [] });
    const entry = byNode.get(node)!;
    const report = cm.data?.[REPORT_KEY];
    if (report !== undefined) {
      try {
        entry.report = JSON.parse(report) as NodeReport;
      } catch {
        // a report that does not parse is a node without a report: its status still says what happened
      }
    }
    const data = cm.binaryData?.['results.gz'];
    if (data !== undefined && n > 0) entry.parts.push({ i, n, data: Buffer.from(data, 'base64') });
  }
  const out = new Map<string, NodeDownload>();
  for (const [node, { report, parts }] of byNode) {
    const d: NodeDownload = { ...(report ? { report } : {}) };
    out.set(node, d);
    if (!parts.length) continue;
    parts.sort((a, b) => a.i - b.i);
    if (parts.length !== parts[0].n || !report) {
      d.error = `${parts.length} of ${parts[0].n} result chunks found${report ? '' : ' and no report (chunk 0)'}: the node's upload did not finish`;
      continue;
    }
    try {
      d.files = unpack(Buffer.concat(parts.map((p) => p.data)), path.join(dir, safeNodeDir(node)));
    } catch (err) {
      d.error = `its results do not unpack: ${apiMessage(err)}`;
    }
  }
  return out;
}

/** A node name as a folder name: node names are DNS subdomains already; anything else is replaced. */
export function safeNodeDir(node: string): string {
  const d = node.replace(/[^A-Za-z0-9._-]/g, '_');
  return d === '.' || d === '..' || d === 'raw' ? `node-${d}` : d;
}
