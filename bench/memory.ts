/**
 * Peak memory of evaluation: N trace/open-shaped events (default 1M) captured by a fake
 * session (it copies a generated NDJSON file into its spool when stopped), then the
 * run's evaluation writes them as NDJSON + CSV + JSON, in a child process that reports
 * its peak RSS (VmHWM) and how long the run took. No kernel, no root.
 *
 *   node --import tsx bench/memory.ts [--events 1000000] [--src ../other-checkout] [--assert]
 *
 * --src runs another checkout's runner (e.g. main, for a before/after figure): it needs
 * runRecipe(loaded, { openSession }) and parseRecipe(text, file, registry), as both have.
 * --assert adds an assertion that reads the step (its events are then parsed, in the sandbox).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(HERE), '..');

const FIELDS = ['timestamp', 'pid', 'tid', 'uid', 'gid', 'comm', 'path', 'flags', 'mode', 'ret', 'fd', 'err', 'mntns_id', 'cgroup_id'];

/** An open as trace/open's codec writes it (same keys, same order, similar lengths). */
function eventLine(i: number): string {
  const ret = i % 7 === 0 ? -2 : 3 + (i % 20);
  const ns = String(i % 1_000_000_000).padStart(9, '0');
  return `{"timestamp":"2025-01-01T00:00:${String(Math.floor(i / 1e6) % 60).padStart(2, '0')}.${ns}Z","pid":${1000 + (i % 50)},"tid":${1000 + (i % 50)},"uid":0,"gid":0,"comm":"open_loop","path":"/tmp/bench/file-${i % 1000}.txt","flags":524288,"mode":0,"ret":${ret},"fd":${ret >= 0 ? ret : -1},"err":${ret < 0 ? -ret : 0},"mntns_id":4026531841,"cgroup_id":${10000 + (i % 3)}}\n`;
}

function generate(file: string, n: number): void {
  const fd = fs.openSync(file, 'w');
  let batch: string[] = [];
  for (let i = 0; i < n; i++) {
    batch.push(eventLine(i));
    if (batch.length === 10_000) {
      fs.writeSync(fd, batch.join(''));
      batch = [];
    }
  }
  fs.writeSync(fd, batch.join(''));
  fs.closeSync(fd);
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** In the child: one run of a one-step recipe whose fake session yields the generated events. */
async function child(src: string, eventsFile: string, outDir: string, withAssertion: boolean): Promise<void> {
  const { parseRecipe } = await import(pathToFileURL(path.join(src, 'src/runner/recipe.ts')).href);
  const { runRecipe } = await import(pathToFileURL(path.join(src, 'src/runner/run.ts')).href);
  const def = {
    id: 'bench/open', description: 'generated opens', mode: 'stream', object: 'none.bpf.o', struct: 'none',
    fields: FIELDS.map((name) => ({ name, type: ['comm', 'path', 'timestamp'].includes(name) ? 'string' : 'number', description: '' })),
    kernelFilters: {}, requires: [],
  };
  const text = `name: memory
steps:
  - { id: opens, gadget: bench/open, duration: 10ms, outputs: [opens.ndjson, opens.csv, opens.json] }
${withAssertion ? "assertions:\n  - { name: some failed, expr: '$count(steps.opens[err != 0]) > 0' }\n" : ''}`;
  const loaded = parseRecipe(text, 'memory.yaml', { 'bench/open': def });
  const loadedRssMb = peakRssMb();
  const started = performance.now();
  const summary = await runRecipe(loaded, {
    outDir,
    objectDir: '/nonexistent',
    log: () => {},
    openSession: async (_def: unknown, ctx: { spoolPath: string }) => ({
      finished: new Promise(() => {}),
      attached: 1,
      start() {},
      async stop() {
        fs.copyFileSync(eventsFile, ctx.spoolPath);
        return { events: -1, lost: 0, warnings: [] };
      },
    }),
  });
  const seconds = (performance.now() - started) / 1000;
  const step = summary.steps[0];
  process.stdout.write(JSON.stringify({ status: summary.status, step: step.status, reason: step.reason, artifacts: step.artifacts, assertions: summary.assertions, seconds, loadedRssMb, peakRssMb: peakRssMb() }) + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      src: { type: 'string', default: ROOT },
      assert: { type: 'boolean', default: false },
      child: { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (values.child) return child(values.src!, values.child, values.out!, values.assert!);
  const n = Number(values.events);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-bench-memory-'));
  try {
    const events = path.join(dir, 'events.ndjson');
    generate(events, n);
    const mb = fs.statSync(events).size / 2 ** 20;
    const args = ['--import', 'tsx', HERE, '--child', events, '--out', path.join(dir, 'out'), '--src', values.src!, ...(values.assert ? ['--assert'] : [])];
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0 && !r.stdout) throw new Error(`the child failed (exit ${r.status}, ${r.signal ?? 'no signal'}):\n${r.stderr.slice(-2000)}`);
    const got = JSON.parse(r.stdout.trim().split('\n').pop()!);
    console.log(`${n} events (${mb.toFixed(0)} MiB NDJSON), outputs ndjson+csv+json${values.assert ? ' + an assertion over them' : ''}, runner from ${values.src}`);
    console.log(`  run ${got.status}, step ${got.step}${got.reason ? ` (${got.reason})` : ''}, wrote ${got.artifacts.join(' ') || 'nothing'}`);
    console.log(`  peak RSS ${got.peakRssMb.toFixed(0)} MB (${got.loadedRssMb.toFixed(0)} MB once the runner was loaded), run (capture copy + evaluation) ${got.seconds.toFixed(1)} s`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
