/**
 * The cluster path at N simulated nodes, on the test cluster (scripts/k8s-cluster.mjs):
 * runs test/k8s/scale.test.ts — the harness of the suite's 50-node run, which takes the
 * cluster's machine-wide lock — with GADGET_RUN_K8S_NODES=N and prints what it measured:
 * time to all nodes attached and to all merged, API requests per node and run by verb (as
 * the agents counted them, retries included, and as the API server answered them), 5xx
 * answers and the retries logged for them, the CLI's peak RSS, the API server's and the agent
 * processes' CPU seconds during the run and the load average (1 min) at its start, highest and end.
 *   sudo node --import tsx bench/k8s-scale.ts [--nodes 500] [--per-process 50]
 * Up to 50 nodes each fake agent is a process; past that, --per-process of them share one
 * (test/k8s/agent-host.ts: each its own Agent, client, node name and token).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '500' }, 'per-process': { type: 'string' } } });
const root = path.resolve(import.meta.dirname, '..');
const figuresFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-bench-k8s-scale-')), 'figures.json');
const env = {
  ...process.env,
  GADGET_RUN_K8S_NODES: values.nodes,
  GADGET_RUN_K8S_FIGURES: figuresFile,
  ...(values['per-process'] ? { GADGET_RUN_K8S_AGENTS_PER_PROCESS: values['per-process'] } : {}),
};
// the test's own output (its diagnostics, a failure's reasons) as it comes
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', 'test/k8s/scale.test.ts'], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
if (code !== 0 || !fs.existsSync(figuresFile)) {
  console.error(`test/k8s/scale.test.ts exited ${code}${fs.existsSync(figuresFile) ? '' : ' without figures'}`);
  process.exit(1);
}

interface Figures {
  nodes: number; wallMs: number; allAttachedMs?: number; attachedMedianMs: number; allDoneMs: number; mergedMs: number;
  agentCallsPerNode: { min: number; max: number; byVerb: Record<string, number> };
  serverCallsPerNode: Record<string, number>;
  statusBytesPerNode: number; cliApiCalls: number; server5xx: number; retried5xx: number;
  slowWrites: { count: number; medianMs?: number; maxMs?: number };
  cliPeakRssMiB: number; cliPeak?: { atMs: number; rss: number; heapTotal: number; heapUsed: number; external: number }; apiServerCpuSeconds: number; agentCpuSeconds: number; agentProcesses: number; agentsReadyMs: number;
  loadAverage1m: { start: number; max: number; end: number };
}
const f = JSON.parse(fs.readFileSync(figuresFile, 'utf8')) as Figures;
const s = (ms: number | undefined) => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`);
const rows: [string, string][] = [
  ['nodes (fake agents / processes)', `${f.nodes} / ${f.agentProcesses} (ready in ${s(f.agentsReadyMs)})`],
  ['all nodes attached (median node)', `${s(f.allAttachedMs)} (${s(f.attachedMedianMs)})`],
  ['all nodes done / results merged', `${s(f.allDoneMs)} / ${s(f.mergedMs)} (CLI wall ${s(f.wallMs)})`],
  ['requests per node and run, agents\' count (retries included)', `${Object.entries(f.agentCallsPerNode.byVerb).map(([k, v]) => `${k} ${v}`).join(', ')} (a node: ${f.agentCallsPerNode.min}–${f.agentCallsPerNode.max})`],
  ['requests per node and run, API server\'s count (verb resource code; the CLI\'s too)', Object.entries(f.serverCallsPerNode).map(([k, v]) => `${k}: ${v}`).join(', ')],
  ['5xx answered / retries of one logged', `${f.server5xx} / ${f.retried5xx}${f.retried5xx >= f.server5xx ? ' (none left unretried)' : ' (SOME NOT RETRIED)'}`],
  ['gadget-run writes (creates, patches) the API server traced as slower than 500 ms: count, median, max', `${f.slowWrites.count}, ${s(f.slowWrites.medianMs)}, ${s(f.slowWrites.maxMs)}`],
  ['the CLI: requests / peak RSS', `${f.cliApiCalls} / ${f.cliPeakRssMiB} MiB`],
  ['the CLI at its highest sampled RSS (every 50 ms): when / RSS, V8 heap allocated, in use, external', f.cliPeak ? `${s(f.cliPeak.atMs)} after it started (all done ${s(f.allDoneMs)}, merged ${s(f.mergedMs)}) / ${f.cliPeak.rss}, ${f.cliPeak.heapTotal}, ${f.cliPeak.heapUsed}, ${f.cliPeak.external} MiB` : 'not sampled'],
  ['CPU during the run: API server / the simulated nodes\' agent processes', `${f.apiServerCpuSeconds} s / ${f.agentCpuSeconds} s`],
  ['a node\'s answer (its GadgetRunNode\'s status)', `${f.statusBytesPerNode} bytes`],
  ['load average (1 min): start / max / end', `${f.loadAverage1m.start} / ${f.loadAverage1m.max} / ${f.loadAverage1m.end} (${os.cpus().length} cores)`],
];
console.log(`\n| ${f.nodes} simulated nodes | measured |\n|---|---|`);
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
