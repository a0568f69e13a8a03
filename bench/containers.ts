/**
 * Containers: what a container scope costs a traced container, and what a
 * non-matching container costs the ring. trace/open under the open-heavy
 * workload (workload/open_loop.c, N open+close) run INSIDE a podman/runc
 * container over a busybox rootfs, while a second container runs the same
 * loop and is not selected:
 *   untraced                the selected container alone
 *   comm filter             trace/open with comm==open_mine (no container scope): the same events, the baseline
 *   container selection     trace/open with containers: { container: <name> } (the kernel set lookup)
 * Enrichment is the evaluation-time join (src/runner/containers.ts); its cost
 * is measured on the captured spool, apart from the workload.
 *   sudo node --import tsx bench/containers.ts [--n 300000] [--runs 3]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bootToWallNs } from '../src/ebpf/clock.ts';
import { parseFilter } from '../src/steps/filter.ts';
import { gadgets, openSession, type StepContext } from '../src/steps/index.ts';
import type { ContainerScope } from '../src/containers/selection.ts';
import { buildTable } from '../src/containers/table.ts';
import { enrichRaw } from '../src/runner/enrich.ts';
import { collect, exited, median, parseWorkload } from './lib.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '300000' }, runs: { type: 'string', default: '3' } } });
const N = Number(values.n);
const RUNS = Number(values.runs);
const REPO = path.resolve(import.meta.dirname, '..');
execFileSync('make', ['-s', '-C', path.join(REPO, 'bpf')]);
execFileSync('make', ['-s', '-C', path.join(REPO, 'bench')]);

const rootfs = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-bench-rootfs-'));
for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp']) fs.mkdirSync(path.join(rootfs, d));
fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
fs.symlinkSync('busybox', path.join(rootfs, 'bin/sh'));
// two names, so a comm filter (the baseline) selects the same events as the container selection
for (const bin of ['open_mine', 'open_other']) {
  fs.copyFileSync(path.join(REPO, 'build/bench/open_loop'), path.join(rootfs, bin));
  fs.chmodSync(path.join(rootfs, bin), 0o755);
}
const podman = (name: string, cmd: string[]) => ['--runtime', '/usr/sbin/runc', 'run', '--rm', '--name', name, '--network', 'none',
  '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--rootfs', rootfs, ...cmd];

async function inContainer(name: string, bin = 'open_mine') {
  const child = spawn('podman', podman(name, [`/${bin}`, String(N)]), { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = collect(child.stdout);
  const code = await exited(child);
  if (code !== 0) throw new Error(`podman run ${name} exited with ${code}`);
  return parseWorkload(out());
}

function context(spool: string, filter: string, containers?: ContainerScope): StepContext {
  return {
    id: 'open', params: {}, filter: parseFilter(filter), spoolPath: spool, bootToWallNs: bootToWallNs(),
    objectDir: path.join(REPO, 'build/bpf'), options: { buffer: '16MiB' }, maxBytes: Number.MAX_SAFE_INTEGER,
    ...(containers ? { containers } : {}),
  };
}

const results: Record<string, { elapsedS: number; events: number; lost: number; otherEvents?: number }[]> = { untraced: [], 'comm filter': [], 'container selection': [] };
let joinFigures: { events: number; ms: number } | undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-bench-containers-'));
try {
  for (let run = 0; run < RUNS; run++) {
    const tag = `${process.pid}-${run}`;
    results.untraced.push({ ...(await inContainer(`bench-alone-${tag}`)), events: 0, lost: 0 });
    for (const variant of ['comm filter', 'container selection'] as const) {
      const name = `bench-sel-${variant.replace(' ', '')}-${tag}`;
      const other = `bench-other-${variant.replace(' ', '')}-${tag}`;
      const spool = path.join(tmp, `${variant.replace(' ', '')}-${run}.ndjson`);
      const session = await openSession(gadgets['trace/open'], variant === 'comm filter'
        ? context(spool, 'comm==open_mine')
        : context(spool, '', { selection: { container: name }, workload: false }));
      session.start();
      const [mine] = await Promise.all([inContainer(name), inContainer(other, 'open_other')]);
      const outcome = await session.stop();
      const otherRecord = outcome.containers?.find((c) => c.name === other);
      const lines = fs.readFileSync(spool, 'utf8').split('\n').filter(Boolean);
      const otherEvents = otherRecord ? lines.filter((l) => l.includes(`"cgroup_id":${otherRecord.cgroupId}`)).length : undefined;
      results[variant].push({ elapsedS: mine.elapsedS, events: outcome.events, lost: outcome.lost, ...(otherEvents !== undefined ? { otherEvents } : {}) });
      if (variant === 'container selection' && outcome.containers) {
        const table = buildTable([], { open: outcome.containers });
        const t0 = performance.now();
        const { events } = await enrichRaw(spool, path.join(tmp, 'joined.ndjson'), table, 'open');
        joinFigures = { events, ms: performance.now() - t0 };
      }
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(rootfs, { recursive: true, force: true });
}
const summary = Object.fromEntries(Object.entries(results).map(([k, rs]) => [k, {
  elapsedS: median(rs.map((r) => r.elapsedS)), events: rs.map((r) => r.events), lost: rs.map((r) => r.lost),
  ...(rs.some((r) => r.otherEvents !== undefined) ? { otherContainerEvents: rs.map((r) => r.otherEvents) } : {}),
}]));
const ratio = summary['container selection'].elapsedS / summary['comm filter'].elapsedS;
const report = { n: N, runs: RUNS, variants: summary, selectionVsCommFilter: ratio, join: joinFigures && { ...joinFigures, perEventNs: (joinFigures.ms * 1e6) / joinFigures.events } };
fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(REPO, 'bench/results/containers.json'), JSON.stringify(report, null, 2) + '\n');
console.log(JSON.stringify(report, null, 2));
