/**
 * A cluster run's result path at scale, no cluster needed: NODES simulated
 * nodes × EVENTS trace/open-shaped events each (~290 bytes an event), each
 * node's folder packed and uploaded by the agent's code (uploadResults) in a
 * process of its own, then the CLI's download (downloadResults, a page of
 * ConfigMaps at a time), merge (mergeRaw) and evaluation (the enrich stage and
 * an NDJSON output of every event) in another. The API server is a folder of
 * ConfigMap JSON files. Each side runs bundled, as the product does (the agent
 * with the DaemonSet's V8 flags), so its RSS is the product's and not tsx's;
 * peak RSS is the process's own maxRSS.
 *   node --import tsx bench/cluster-merge.ts [--nodes 3] [--events 1000000] [--max-result-bytes 64]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildSync } from 'esbuild';
import { AGENT_SEMI_SPACE_MB } from '../src/k8s/manifests.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '3' }, events: { type: 'string', default: '1000000' }, 'max-result-bytes': { type: 'string', default: '64' } } });
const NODES = Number(values.nodes);
const EVENTS = Number(values.events);
const MAX_MIB = Number(values['max-result-bytes']);

const root = path.resolve(import.meta.dirname, '..');
const child = path.join(root, 'build', 'bench', 'cluster-merge-child.mjs');
buildSync({ entryPoints: [path.join(root, 'bench/cluster-merge-child.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: child, packages: 'external', logLevel: 'warning' });
const run = (...args: string[]) => {
  // the agent runs with the DaemonSet's V8 flags; the CLI with node's defaults
  const flags = args[0] === 'agent' ? [`--max-semi-space-size=${AGENT_SEMI_SPACE_MB}`] : [];
  return JSON.parse(execFileSync(process.execPath, [...flags, child, ...args], { encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!);
};
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-bench-merge-'));
try {
  const nodes = Array.from({ length: NODES }, (_, i) => `node-${i}`);
  let rawBytes = 0;
  for (const n of nodes) rawBytes += run('make', path.join(dir, 'nodes', n), n, String(EVENTS)).bytes;
  const rows: string[] = [];
  let configMaps = 0;
  let stored = 0;
  for (const n of nodes) {
    const a = run('agent', path.join(dir, 'nodes', n), path.join(dir, 'cm'), n, String(MAX_MIB * 1024 * 1024));
    if (a.cut.length) console.error(`${n}: cut at ${MAX_MIB} MiB: ${JSON.stringify(a.cut)}`);
    rows.push(`| agent ${n}: pack + upload | ${mb(a.baseRssKb)} | ${mb(a.peakRssKb)} | ${(a.uploadMs / 1000).toFixed(1)} s | ${a.chunks} ConfigMaps, ${(a.bytes / 1024 ** 2).toFixed(1)} MiB gzip |`);
  }
  for (const f of fs.readdirSync(path.join(dir, 'cm'))) {
    const cm = JSON.parse(fs.readFileSync(path.join(dir, 'cm', f), 'utf8'));
    configMaps++;
    stored += (cm.binaryData?.['results.gz']?.length ?? 0) + (cm.data?.['result.json']?.length ?? 0);
  }
  fs.writeFileSync(path.join(dir, 'r.yaml'), 'name: merge\nduration: 1s\nsteps:\n  - id: opens\n    gadget: trace/open\n    outputs: [opens.ndjson]\n');
  const c = run('cli', path.join(dir, 'cm'), path.join(dir, 'out'), path.join(dir, 'r.yaml'), ...nodes);
  const events = c.steps[0].events;
  if (events !== NODES * EVENTS) throw new Error(`the merge holds ${events} events, not ${NODES * EVENTS}`);
  rows.push(`| CLI: download + merge + evaluate | ${mb(c.baseRssKb)} | ${mb(c.peakRssKb)} | ${(c.downloadMs / 1000).toFixed(1)} + ${(c.mergeMs / 1000).toFixed(1)} + ${(c.evaluateMs / 1000).toFixed(1)} s | ${events} events enriched into opens.ndjson |`);
  console.log(`${NODES} nodes × ${EVENTS} events (${(rawBytes / NODES / 1024 ** 2).toFixed(0)} MB of NDJSON per node), cluster.max_result_bytes ${MAX_MIB}MiB`);
  console.log('| side | RSS at start | peak RSS | time | what |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`left in the API server: ${configMaps} ConfigMaps, ${(stored / 1024 ** 2).toFixed(1)} MiB (base64)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
