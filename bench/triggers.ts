/**
 * Trigger latency: from a start_on trigger event to the triggered step's first
 * event, for `attach: lazy` (loaded and attached at the trigger) and `attach:
 * preload` (attached with the run, its gate opened at the trigger), runs
 * alternating. The workload execs a marker shell whose children exec
 * /bin/true every 5 ms, so the triggered step (trace/exec scoped to the
 * marker's children: {ppid: pid}) has an event as soon as it can see one; the
 * latency is the first such event's timestamp minus the trigger's (both the
 * kernel's clock). Also reported: attachMs (reading the trigger to attached).
 *
 *   sudo node --import tsx bench/triggers.ts [--runs 5] [--gadget trace/exec]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseRecipe } from '../src/runner/recipe.ts';
import { runRecipe } from '../src/runner/run.ts';
import { fmt, median } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const objectDir = path.join(import.meta.dirname, '..', 'build', 'bpf');

const ns = (ts: string) => {
  // RFC 3339 with 9 fractional digits: exact in BigInt
  const [secs, frac] = ts.replace('Z', '').split('.');
  return BigInt(Date.parse(`${secs}Z`)) * 1_000_000n + BigInt((frac ?? '').padEnd(9, '0'));
};

function recipe(attach: 'lazy' | 'preload'): string {
  return `name: bench-triggers
run: |
  M=bench
  sleep 0.5
  sh -c 'i=0; while [ $i -lt 600 ]; do /bin/true; sleep 0.005; i=$((i+1)); done' "$M-go"
steps:
  - {id: trig, gadget: trace/exec, filter: 'args~bench-go'}
  - {id: after, gadget: trace/exec, filter: 'comm==true', start_on: {step: trig}, scope: {ppid: pid}, attach: ${attach}}
`;
}

async function once(attach: 'lazy' | 'preload'): Promise<{ latencyMs: number; attachMs: number }> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-bench-triggers-'));
  try {
    const summary = await runRecipe(parseRecipe(recipe(attach), 'bench-triggers.yaml'), { outDir: out, objectDir, log: () => {} });
    const inst = summary.steps.find((s) => s.id === 'after')?.instances?.[0];
    if (!inst) throw new Error(`no instance: ${summary.reasons.join('; ')}`);
    const first = fs.readFileSync(path.join(out, 'raw', 'after.ndjson'), 'utf8').split('\n')[0];
    if (!first) throw new Error('the triggered step saw no event');
    const latency = ns((JSON.parse(first) as { timestamp: string }).timestamp) - ns(inst.triggered_by.at);
    return { latencyMs: Number(latency) / 1e6, attachMs: inst.attachMs ?? NaN };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

const results: Record<'lazy' | 'preload', { latencyMs: number; attachMs: number }[]> = { lazy: [], preload: [] };
for (let i = 0; i < runs; i++) {
  for (const attach of ['lazy', 'preload'] as const) {
    const r = await once(attach);
    results[attach].push(r);
    console.error(`run ${i + 1} ${attach}: trigger → first event ${r.latencyMs.toFixed(1)} ms (attach ${r.attachMs} ms)`);
  }
}
console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, ${os.cpus().length} CPUs, ${runs} runs each, alternating`);
console.log('| attach | trigger → first event, median ms | min | max | reading the trigger → attached, median ms |');
console.log('|---|---|---|---|---|');
for (const attach of ['lazy', 'preload'] as const) {
  const l = results[attach].map((r) => r.latencyMs);
  console.log(`| ${attach} | ${fmt(median(l), 1)} | ${fmt(Math.min(...l), 1)} | ${fmt(Math.max(...l), 1)} | ${fmt(median(results[attach].map((r) => r.attachMs)), 0)} |`);
}
