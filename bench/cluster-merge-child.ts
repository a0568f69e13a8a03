/**
 * One side of a cluster run's result path, in a process of its own so its
 * peak RSS is its own (bench/cluster-merge.ts, test/k8s/streaming.test.ts):
 *   make NODE_DIR NODE EVENTS              a node's output folder as capture leaves it (trace/open-shaped events)
 *   agent NODE_DIR CM_DIR NODE MAX_BYTES   the agent's packing and upload (uploadResults)
 *   cli CM_DIR OUT RECIPE NODE...          the CLI's download (downloadResults), merge (mergeRaw) and evaluation
 * The API server is a folder: a created ConfigMap is a JSON file in CM_DIR, and a
 * list pages through them (limit/continue) as the API server's does. The code
 * paths are the product's own; only the HTTP calls are not made.
 * Prints one JSON line: baseline and peak RSS (KiB) and the phases' times.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { Api } from '../src/k8s/client.ts';
import { mergeRaw } from '../src/k8s/cluster-run.ts';
import { downloadResults, uploadResults } from '../src/k8s/results.ts';
import { evaluate } from '../src/runner/evaluate.ts';
import { loadRecipeFile } from '../src/runner/recipe.ts';

/** An Api whose ConfigMaps live in a folder (only the two calls the result path makes). */
function folderApi(cmDir: string): Api {
  const api = Object.create(Api.prototype) as Api;
  Object.assign(api, {
    calls: new Map<string, number>(),
    core: {
      async createNamespacedConfigMap({ body }: { body: V1ConfigMap }) {
        fs.writeFileSync(path.join(cmDir, `${body.metadata!.name}.json`), JSON.stringify(body));
        return body;
      },
      async listNamespacedConfigMap({ limit, _continue }: { limit?: number; _continue?: string }) {
        const names = fs.readdirSync(cmDir).sort();
        const from = Number(_continue ?? 0);
        const to = limit ? from + limit : names.length;
        const items = names.slice(from, to).map((n) => JSON.parse(fs.readFileSync(path.join(cmDir, n), 'utf8')) as V1ConfigMap);
        return { items, metadata: to < names.length ? { _continue: String(to) } : {} };
      },
    },
  });
  return api;
}

const [role, ...args] = process.argv.slice(2);
const baseRssKb = Math.round(process.memoryUsage().rss / 1024);
const t0 = performance.now();
const figures: Record<string, unknown> = {};
if (role === 'agent') {
  const [nodeDir, cmDir, node, maxBytes] = args;
  fs.mkdirSync(cmDir, { recursive: true });
  const run = { apiVersion: 'gadget-run.dev/v1alpha1', kind: 'GadgetRun', metadata: { name: 'bench', uid: 'u' }, spec: { recipe: 'x' } } as const;
  const written = await uploadResults(folderApi(cmDir), run, node, nodeDir, (w) => ({ node, phase: 'Succeeded', startedAt: new Date().toISOString(), chunks: w.chunks, bytes: w.bytes }), undefined, Number(maxBytes));
  Object.assign(figures, { chunks: written.chunks, bytes: written.bytes, cut: written.cut, uploadMs: Math.round(performance.now() - t0) });
} else if (role === 'cli') {
  const [cmDir, out, recipeFile, ...nodes] = args;
  const loaded = loadRecipeFile(recipeFile);
  const downloads = await downloadResults(folderApi(cmDir), 'bench', out);
  const t1 = performance.now();
  for (const [node, d] of downloads) if (d.error) throw new Error(`${node}: ${d.error}`);
  await mergeRaw(loaded, out, nodes);
  const t2 = performance.now();
  const ev = await evaluate(loaded.recipe, out);
  Object.assign(figures, {
    downloadMs: Math.round(t1 - t0),
    mergeMs: Math.round(t2 - t1),
    evaluateMs: Math.round(performance.now() - t2),
    steps: ev.steps.map((s) => ({ id: s.id, status: s.status, events: s.events })),
    assertions: ev.assertions.map((a) => a.status),
  });
} else if (role === 'make') {
  const [nodeDir, node, n] = args;
  Object.assign(figures, makeNode(nodeDir, node, Number(n)));
} else {
  throw new Error(`usage: cluster-merge-child.ts agent|cli …`);
}
process.stdout.write(JSON.stringify({ role, baseRssKb, peakRssKb: process.resourceUsage().maxRSS, ...figures }) + '\n');

/** ~290 bytes per event, 20 containers (and the node's own processes), as trace/open writes them. */
function makeNode(dir: string, node: string, events: number): { bytes: number } {
  const raw = path.join(dir, 'raw');
  fs.mkdirSync(raw, { recursive: true });
  const paths = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/etc/ld.so.cache', '/proc/self/status', '/var/lib/app/data/segment-000123.db', '/dev/null', '/etc/hosts'];
  const containers = Array.from({ length: 20 }, (_, i) => ({
    id: `${node}-${i}`.padEnd(64, '0'), runtime: 'containerd', cgroupId: String(5000 + i), cgroupPath: `/kubepods/pod${i}/c${i}`, name: `app-${i}`,
    k8s: { node, namespace: 'shop', pod: `app-${i}-7d9f`, container: 'main', labels: { app: `app-${i}` }, owner: `Deployment/app-${i}` },
  }));
  const fd = fs.openSync(path.join(raw, 'opens.ndjson'), 'w');
  let bytes = 0;
  const t = Date.parse('2026-12-04T13:00:00Z');
  for (let i = 0; i < events; ) {
    let chunk = '';
    for (let k = 0; k < 5000 && i < events; k++, i++) {
      const pid = 1000 + (i % 977);
      // a sixth of the events are the node's own processes (no container)
      const cgroup = i % 6 === 0 ? 1 : 5000 + (i % 20);
      chunk += `{"timestamp":"${new Date(t + i).toISOString()}","pid":${pid},"tid":${pid},"uid":0,"gid":0,"comm":"worker-${i % 13}","mntns_id":4026531840,"cgroup_id":${cgroup},"fd":${3 + (i % 40)},"ret":${3 + (i % 40)},"err":0,"flags":524288,"flag_names":"O_RDONLY|O_CLOEXEC","mode":0,"path":"${paths[i % paths.length]}"}\n`;
    }
    bytes += fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
  const fields = ['timestamp', 'pid', 'tid', 'uid', 'gid', 'comm', 'mntns_id', 'cgroup_id', 'fd', 'ret', 'err', 'flags', 'flag_names', 'mode', 'path'];
  fs.writeFileSync(path.join(raw, 'opens.meta.json'), JSON.stringify({ id: 'opens', gadget: 'trace/open', fields, status: 'ok', events, lost: 0, ended: 'duration', durationMs: 10_000 }, null, 2) + '\n');
  fs.writeFileSync(path.join(raw, 'run.json'), JSON.stringify({ tool_version: 'bench', node, kernel: 'bench', startedAt: new Date(t).toISOString() }) + '\n');
  fs.writeFileSync(path.join(raw, 'containers.json'), JSON.stringify({ containers, steps: {} }, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ status: 'passed', node }) + '\n');
  return { bytes };
}
