#!/usr/bin/env node
// The kernel matrix's tables (test/vm/results.ts makes them):
//   node scripts/vm-table.mjs             README.md's and docs/kernels.md's table (gadget × kernel →
//                                         the hook used or why not) from test/vm/expected.json, and
//                                         docs/kernels.md's figures from build/vm-matrix/history.ndjson
//   node scripts/vm-table.mjs --expected  print the last results (build/vm-matrix/KERNEL/) as
//                                         test/vm/expected.json would hold them
//   node scripts/vm-table.mjs --record    write them into test/vm/expected.json (known failures keep
//                                         their notes; say why for a new one), then the tables
// test/docs/kernel-table.test.ts fails when a table disagrees with expected.json.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const r = await tsImport('../test/vm/results.ts', import.meta.url);
const CACHE = process.env.GADGET_RUN_VM_CACHE ?? '/var/cache/gadget-run/kernels';
const DOCS = ['README.md', 'docs/kernels.md'];

/** The record with each kernel that has results in build/vm-matrix replaced by them. */
function recorded() {
  const record = r.readRecord();
  const names = fs.existsSync(r.RESULTS) ? fs.readdirSync(r.RESULTS).filter((k) => fs.existsSync(path.join(r.RESULTS, k, 'quickstart.json'))) : [];
  if (!names.length) throw new Error(`vm-table: no results in ${r.RESULTS}: run the matrix first (node --import tsx --test test/vm/matrix.test.ts)`);
  const kernels = { ...record.kernels };
  for (const name of names) kernels[name] = r.recordOf(path.join(r.RESULTS, name), record.kernels[name]);
  return { ...record, kernels: Object.fromEntries(Object.keys(kernels).sort(r.byVersion).map((k) => [k, kernels[k]])) };
}

const seconds = (ms) => (ms >= 100_000 ? (ms / 1000).toFixed(0) : (ms / 1000).toFixed(1));
function range(values) {
  const v = values.filter((x) => typeof x === 'number');
  if (!v.length) return '—';
  const [lo, hi] = [Math.min(...v), Math.max(...v)];
  return seconds(lo) === seconds(hi) ? `${seconds(lo)} s` : `${seconds(lo)}–${seconds(hi)} s`;
}

/** What a cold fetch of a release took, when scripts/vm.mjs recorded it. */
function fetchedMs(release) {
  try {
    return JSON.parse(fs.readFileSync(path.join(CACHE, release, '.fetched'), 'utf8')).fetchedMs;
  } catch {
    return undefined;
  }
}

/** Per kernel, over every run in the history: the spread of each measurement, and how busy the machine was. */
function figures() {
  if (!fs.existsSync(r.HISTORY)) return undefined;
  const runs = fs.readFileSync(r.HISTORY, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const names = [...new Set(runs.map((x) => x.name))].sort(r.byVersion);
  // a row per kernel and way of running it (vCPUs, alone or beside the other guests)
  const kinds = names.flatMap((name) => [...new Set(runs.filter((x) => x.name === name).map((x) => x.where))].map((where) => ({ name, where })));
  const rows = kinds.map(({ name, where }) => {
    const all = runs.filter((x) => x.name === name && x.where === where);
    const ok = all.filter((x) => x.code === 0);
    const releases = [...new Set(all.map((x) => x.release))];
    const load = ok.length ? `${Math.min(...ok.map((x) => x.load.min))}–${Math.max(...ok.map((x) => x.load.max))}` : '—';
    const failed = all.length - ok.length;
    return `| ${name} | ${where} | ${ok.length}${failed ? ` (+${failed} that failed)` : ''} | ${range(ok.map((x) => x.bootMs))} | ${range(ok.map((x) => x.gadgetsMs))} | ${range(ok.map((x) => x.testsMs))} | ${range(ok.map((x) => x.ms))} | ${load} | ${range(releases.map(fetchedMs))} |`;
  });
  const from = runs.map((x) => x.at).sort();
  return [
    `Over ${runs.length} kernel runs of the matrix on this machine (${runs[0].cpus} CPUs), ${from[0].slice(0, 10)} to ${from.at(-1).slice(0, 10)}; load is the host's 1-minute load average, sampled every 10 s during each run.`,
    '',
    '| kernel | where | runs | boot to the job | `gadgets --json` | the tests | whole run (qemu start to end) | host load | fetch, cold |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    ...batches(runs),
  ].join('\n');
}

/** The guests started together: the wall time of each batch, from their start to the last one's end (what they add to a CI). */
function batches(runs) {
  const byBatch = new Map();
  for (const x of runs.filter((x) => x.batch && x.startedAt)) byBatch.set(`${x.batch} ${x.startedAt}`, [...(byBatch.get(`${x.batch} ${x.startedAt}`) ?? []), x]);
  const all = [...byBatch.values()].filter((b) => b.length === b[0].batch.split('+').length);
  if (!all.length) return [];
  // from the first qemu's start (after any wait for another user's guests) to the last one's end
  const wall = (b) => Math.max(...b.map((x) => Date.parse(x.at))) - Math.min(...b.map((x) => Date.parse(x.at) - x.ms));
  const clean = all.filter((b) => b.every((x) => x.code === 0));
  const load = (b) => `${Math.min(...b.map((x) => x.load.min))}–${Math.max(...b.map((x) => x.load.max))}`;
  return [
    '',
    `The qemu kernels side by side (${all[0].batch.split('+').join(' and ')}), from their start to the last one's end: ` +
      all.map((b) => `${(wall(b) / 1000).toFixed(0)} s at load ${load(b)}${clean.includes(b) ? '' : ' (a kernel failed)'}`).join('; ') + '.',
  ];
}

function writeTables() {
  const table = r.kernelTable();
  for (const doc of DOCS) {
    const file = path.join(ROOT, doc);
    fs.writeFileSync(file, r.withSection(fs.readFileSync(file, 'utf8'), r.TABLE_MARKS, table, doc));
  }
  const fig = figures();
  if (fig) {
    const file = path.join(ROOT, 'docs/kernels.md');
    fs.writeFileSync(file, r.withSection(fs.readFileSync(file, 'utf8'), r.FIGURES_MARKS, fig, 'docs/kernels.md'));
  }
  console.error(`vm-table: wrote the kernel table into ${DOCS.join(' and ')}${fig ? ', the figures into docs/kernels.md' : ` (no ${path.relative(ROOT, r.HISTORY)}: figures left as they were)`}`);
}

if (process.argv.includes('--expected')) {
  console.log(JSON.stringify(recorded(), null, 2));
} else {
  if (process.argv.includes('--record')) {
    fs.writeFileSync(r.EXPECTED, `${JSON.stringify(recorded(), null, 2)}\n`);
    console.error(`vm-table: recorded build/vm-matrix's results in ${path.relative(ROOT, r.EXPECTED)}: review each new fail's note`);
  }
  writeTables();
}
