/**
 * What pod fields cost, off the capture path (the kernel and the ring
 * consumer do not change with them: events are joined after capture):
 *   join          the evaluation-time join (src/runner/containers.ts) of N
 *                 trace/open-shaped events over 20 containers, with the
 *                 runtime's fields only, and with a pod's (namespace, pod,
 *                 container, 5 labels, owner): per event
 *   source        PodIndex.source().enrich over 100 pods × 2 containers
 *                 (the tracker's pass when containers start, and the
 *                 container table at the end of a run): per container
 *   node --import tsx bench/k8s-source.ts [--n 1000000] [--runs 5]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PodIndex, type PodView } from '../src/containers/k8s-source.ts';
import type { ContainerInfo } from '../src/containers/enrichment.ts';
import type { ContainerTable } from '../src/containers/table.ts';
import { enrichRaw } from '../src/runner/enrich.ts';
import { median } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '5' } } });
const N = Number(values.n);
const RUNS = Number(values.runs);

const hex = (i: number, c: string) => (c.repeat(56) + i.toString(16).padStart(8, '0')).slice(-64);
const uid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const pods: PodView[] = Array.from({ length: 100 }, (_, i) => ({
  metadata: {
    uid: uid(i), name: `web-${i}`, namespace: 'shop',
    labels: { app: `web-${i % 10}`, tier: 'front', 'pod-template-hash': '7d4b9', team: 'a', env: 'prod' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `web-${i}-7d4b9`, controller: true }],
  },
  spec: { nodeName: 'node-1', containers: [{ name: 'app' }, { name: 'sidecar' }] },
  status: { podIPs: [{ ip: `10.0.${i >> 8}.${i & 255}` }], containerStatuses: [{ name: 'app', containerID: `containerd://${hex(i, 'a')}` }, { name: 'sidecar', containerID: `containerd://${hex(i, 'b')}` }] },
}));
const containers = (): ContainerInfo[] =>
  pods.flatMap((p, i) => ['a', 'b'].map((c, j) => ({ id: hex(i, c), runtime: 'containerd' as const, cgroupId: String(1000 + i * 2 + j), cgroupPath: `/kubepods/besteffort/pod${uid(i)}/${hex(i, c)}` })));

const index = new PodIndex('node-1');
for (const p of pods) index.set(p);
const source = index.source();
const sourceUs: number[] = [];
for (let r = 0; r < RUNS * 20; r++) {
  const list = containers();
  const t0 = performance.now();
  source.enrich(list);
  sourceUs.push(((performance.now() - t0) * 1000) / list.length);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-bench-k8s-'));
try {
  const spool = path.join(tmp, 'open.ndjson');
  const fd = fs.openSync(spool, 'w');
  const batch: string[] = [];
  for (let i = 0; i < N; i++) {
    batch.push(`{"timestamp":"2026-12-01T18:00:00.${String(i % 1e6).padStart(6, '0')}Z","pid":${1000 + (i % 50)},"tid":${1000 + (i % 50)},"uid":0,"gid":0,"mntns_id":4026531840,"cgroup_id":${1000 + (i % 20)},"comm":"open_loop","fd":3,"ret":3,"flags":0,"mode":0,"path":"/tmp/bench-file-${i % 7}"}`);
    if (batch.length === 10_000) fs.writeSync(fd, batch.splice(0).join('\n') + '\n');
  }
  if (batch.length) fs.writeSync(fd, batch.join('\n') + '\n');
  fs.closeSync(fd);
  const runtimeOnly = containers().slice(0, 20);
  const withPods = containers().slice(0, 20);
  source.enrich(withPods);
  const tableOf = (list: ContainerInfo[]): ContainerTable => ({ containers: list, steps: { open: { selected: list.map((c) => c.cgroupId), rejected: [] } } });
  const join: Record<string, number[]> = { 'runtime fields': [], 'pod fields': [] };
  for (let r = 0; r < RUNS; r++) {
    for (const [name, table] of [['runtime fields', tableOf(runtimeOnly)], ['pod fields', tableOf(withPods)]] as const) {
      const t0 = performance.now();
      await enrichRaw(spool, path.join(tmp, 'joined.ndjson'), table, 'open');
      join[name].push(((performance.now() - t0) * 1e6) / N);
    }
  }
  const report = {
    n: N,
    runs: RUNS,
    joinNsPerEvent: Object.fromEntries(Object.entries(join).map(([k, v]) => [k, Math.round(median(v))])),
    sourceUsPerContainer: Number(median(sourceUs).toFixed(2)),
  };
  fs.mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(import.meta.dirname, 'results/k8s-source.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(JSON.stringify(report, null, 2));
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
