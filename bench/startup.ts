/**
 * Start-up, part by part, side by side with another build of gadget-run
 * (`--before DIR`: a checkout or install of the version to compare, e.g.
 * `git archive main | tar -x -C /tmp/before` + its build):
 *
 *   node -e 0                 the floor: Node itself
 *   --version                 loading the CLI and printing
 *   validate                  + parsing and checking a recipe
 *   run → workload running    from the spawn to the "running:" line: every program attached
 *   attachedAfterMs           the same point as the CLI measures it (summary.json, from its process start)
 *
 * The recipe is one trace/open step with `run: "true"`. "now, liveness off" runs
 * the same recipe with `liveness: off`: next to "now" (liveness checked, the
 * default), its run rows give what the step's canary (src/runner/canary.ts)
 * adds to the start, and the canary's own round trip is summary.json's
 * steps[].canary.ms (printed below the tables). Besides each build,
 * "now, full BTF" runs this build with GADGET_RUN_BTF_CACHE=off (CO-RE
 * against the kernel's whole vmlinux BTF, as without the minimized-BTF
 * cache). Every run row sets GADGET_RUN_TIMING=1, and the second table is
 * the marks a build prints (src/timing.ts): ms from the process's start to
 * each mark, and the part (since the mark before). Variants are interleaved
 * round by round and the tables show medians (and the median of per-round
 * ratios to node -e 0), so a busy phase of the machine hits every column
 * alike. Needs root for the run rows; the first round warms the BTF cache.
 *
 *   sudo node --import tsx bench/startup.ts [--runs 15] [--before DIR]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, before: { type: 'string' } } });
const runs = Number(values.runs);
const here = path.resolve(import.meta.dirname, '..');

interface Build {
  label: string;
  root: string;
  env?: Record<string, string>;
  /** only the run rows: the same CLI with another environment */
  runOnly?: boolean;
  /** the run rows' recipe, when not the default one */
  recipe?: string;
}
const builds: Build[] = [{ label: 'now', root: here }];
if (values.before) builds.push({ label: 'before', root: path.resolve(values.before) });
builds.push({ label: 'now, full BTF', root: here, env: { GADGET_RUN_BTF_CACHE: 'off' }, runOnly: true });

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-startup-'));
const recipe = path.join(dir, 'open.yaml');
fs.writeFileSync(recipe, 'name: startup\nrun: "true"\nsteps:\n  - id: opens\n    gadget: trace/open\n');
const noLiveness = path.join(dir, 'open-off.yaml');
fs.writeFileSync(noLiveness, 'name: startup\nrun: "true"\nliveness: off\nsteps:\n  - id: opens\n    gadget: trace/open\n');
builds.splice(1, 0, { label: 'now, liveness off', root: here, runOnly: true, recipe: noLiveness });
/** the canary's round trips (summary.json steps[].canary.ms) of the "now" runs */
const canaryMs: number[] = [];

interface Timed {
  ms: number;
  /** GADGET_RUN_TIMING marks: what → ms from the CLI's start */
  marks: Map<string, number>;
}

/** ms from spawn to exit, or to the first stderr line matching `until` (then it runs to its end). */
function time(argv: string[], env: Record<string, string> = {}, until?: RegExp): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    let at: number | undefined;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (until && at === undefined && until.test(stderr)) at = performance.now() - t0;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const end = performance.now() - t0;
      if (code !== 0) reject(new Error(`${argv.join(' ')} exited ${code}:\n${stderr}`));
      else if (until && at === undefined) reject(new Error(`${argv.join(' ')} never printed ${until}:\n${stderr}`));
      else resolve({ ms: at ?? end, marks: marksOf(stderr) });
    });
  });
}

/** `gadget-run: timing <ms> <what>` lines; a part that repeats (one per object) keeps its first. */
function marksOf(stderr: string): Map<string, number> {
  const marks = new Map<string, number>();
  for (const m of stderr.matchAll(/^gadget-run: timing ([\d.]+) (.*?)(?: \(minimized CO-RE BTF\))?$/gm)) {
    if (!marks.has(m[2])) marks.set(m[2], Number(m[1]));
  }
  return marks;
}

interface Row {
  name: string;
  run: (b: Build) => Promise<Timed>;
  /** false: the floor, once per round */
  perBuild: boolean;
  /** a run row: also the variants that differ only in environment */
  isRun?: boolean;
}

const cli = (b: Build, ...args: string[]) => [process.execPath, path.join(b.root, 'bin/gadget-run'), ...args];
const root = process.getuid?.() === 0;
const timing = { GADGET_RUN_TIMING: '1' };
let outs = 0;
const rows: Row[] = [
  { name: 'node -e 0', run: () => time([process.execPath, '-e', '0']), perBuild: false },
  { name: '--version', run: (b) => time(cli(b, '--version'), b.env), perBuild: true },
  { name: 'validate', run: (b) => time(cli(b, 'validate', recipe), b.env), perBuild: true },
  ...(root
    ? [
        { name: 'run → workload running', run: (b: Build) => time(cli(b, 'run', b.recipe ?? recipe, '--out', path.join(dir, `out-${outs++}`)), { ...b.env, ...timing }, /running: /), perBuild: true, isRun: true },
        {
          name: 'attachedAfterMs',
          run: async (b: Build) => {
            const out = path.join(dir, `out-${outs++}`);
            const t = await time(cli(b, 'run', b.recipe ?? recipe, '--out', out), { ...b.env, ...timing });
            const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
            if (b.label === 'now' && summary.steps[0].canary?.ms !== undefined) canaryMs.push(summary.steps[0].canary.ms);
            return { ms: summary.attachedAfterMs as number, marks: t.marks };
          },
          perBuild: true,
          isRun: true,
        },
      ]
    : []),
];

const samples = new Map<string, number[]>();
const ratios = new Map<string, number[]>();
/** build label → mark → [ms from start] */
const marks = new Map<string, Map<string, number[]>>();
const push = <K>(m: Map<K, number[]>, k: K, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
// warm the page cache, and the minimized-BTF cache (its first run makes it)
for (const b of builds) if (!b.runOnly) await time(cli(b, '--version'));
if (root) for (const b of builds) await time(cli(b, 'run', b.recipe ?? recipe, '--out', path.join(dir, 'warm')), b.env);
for (let round = 0; round < runs; round++) {
  let floor = 0;
  for (const row of rows) {
    const variants = row.perBuild ? builds.filter((b) => !b.runOnly || row.isRun) : builds.slice(0, 1);
    for (const b of variants) {
      const key = row.perBuild ? `${row.name} (${b.label})` : row.name;
      const t = await row.run(b);
      if (!row.perBuild) floor = t.ms;
      push(samples, key, t.ms);
      push(ratios, key, t.ms / floor);
      if (row.isRun && row.name.startsWith('run')) {
        const byMark = marks.get(b.label) ?? new Map<string, number[]>();
        marks.set(b.label, byMark);
        for (const [what, ms] of t.marks) push(byMark, what, ms);
      }
    }
  }
  process.stderr.write(`round ${round + 1}/${runs}\r`);
}
process.stderr.write('\n');

const table = [...samples.keys()].map((k) => ({ part: k, ms: Math.round(median(samples.get(k)!)), 'x node -e 0': Number(median(ratios.get(k)!).toFixed(2)) }));
console.log(`gadget-run start-up, ${runs} rounds, medians; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('\n| part | ms | × node -e 0 |\n|---|---|---|');
for (const t of table) console.log(`| ${t.part} | ${t.ms} | ${t['x node -e 0']} |`);

// the run's marks: one column pair per build that prints them
const labels = [...marks.keys()].filter((l) => marks.get(l)!.size > 0);
const partsTable: Record<string, Record<string, { at: number; part: number }>> = {};
if (labels.length) {
  const order: string[] = [];
  for (const l of labels) for (const what of marks.get(l)!.keys()) if (!order.includes(what)) order.push(what);
  console.log(`\nThe run's parts (GADGET_RUN_TIMING marks, ms from the CLI's start; part = since the mark before):\n`);
  console.log(`| mark | ${labels.map((l) => `${l} at | ${l} part`).join(' | ')} |\n|---|${labels.map(() => '---|---|').join('')}`);
  for (const what of order) {
    const cells = labels.map((l) => {
      const byMark = marks.get(l)!;
      const ms = byMark.get(what);
      if (!ms) return '– | –';
      const seen = [...byMark.keys()];
      const prev = seen[seen.indexOf(what) - 1];
      const at = median(ms);
      const part = prev === undefined ? at : median(ms.map((m, i) => m - (byMark.get(prev)?.[i] ?? 0)));
      (partsTable[l] ??= {})[what] = { at: Math.round(at * 10) / 10, part: Math.round(part * 10) / 10 };
      return `${at.toFixed(1)} | ${part.toFixed(1)}`;
    });
    console.log(`| ${what} | ${cells.join(' | ')} |`);
  }
}
// what the canary adds where it runs: from "attached" to "workload spawned", checked against off
// (whole-run times on a loaded machine vary by far more than the canary takes)
const span = (l: string) => {
  const p = partsTable[l];
  const attached = p && Object.keys(p).find((k) => k.startsWith('attached '));
  return attached && p['workload spawned'] ? p['workload spawned'].at - p[attached].at : undefined;
};
const [checkedSpan, offSpan] = [span('now'), span('now, liveness off')];
const liveness = canaryMs.length ? { canaryMs: median(canaryMs), attachedToWorkloadMs: { checked: checkedSpan, off: offSpan } } : undefined;
if (liveness) console.log(`\nliveness canary (one trace/open step): round trip ${liveness.canaryMs} ms (summary.json canary.ms, median); attached → workload spawned: ${checkedSpan?.toFixed(1)} ms checked, ${offSpan?.toFixed(1)} ms off`);
fs.mkdirSync(path.join(here, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(here, 'bench/results/startup.json'), JSON.stringify({ runs, loadavg: os.loadavg(), table, parts: partsTable, ...(liveness ? { liveness } : {}) }, null, 2) + '\n');
fs.rmSync(dir, { recursive: true, force: true });
