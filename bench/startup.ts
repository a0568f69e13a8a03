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
 * The recipe is one trace/open step with `run: "true"`. Variants are
 * interleaved round by round and the table shows medians (and the median of
 * per-round ratios to node -e 0), so a busy phase of the machine hits every
 * column alike. Needs root for the run rows.
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
const builds: [string, string][] = [['now', here]];
if (values.before) builds.push(['before', path.resolve(values.before)]);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-startup-'));
const recipe = path.join(dir, 'open.yaml');
fs.writeFileSync(recipe, 'name: startup\nrun: "true"\nsteps:\n  - id: opens\n    gadget: trace/open\n');

/** ms from spawn to exit, or to the first stderr line matching `until` (then it runs to its end). */
function time(argv: string[], until?: RegExp): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
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
      else resolve(at ?? end);
    });
  });
}

interface Row {
  name: string;
  run: (root: string) => Promise<number>;
  perBuild: boolean;
}

const cli = (root: string, ...args: string[]) => [process.execPath, path.join(root, 'bin/gadget-run'), ...args];
const root = process.getuid?.() === 0;
const rows: Row[] = [
  { name: 'node -e 0', run: () => time([process.execPath, '-e', '0']), perBuild: false },
  { name: '--version', run: (r) => time(cli(r, '--version')), perBuild: true },
  { name: 'validate', run: (r) => time(cli(r, 'validate', recipe)), perBuild: true },
  ...(root
    ? [
        { name: 'run → workload running', run: (r: string) => time(cli(r, 'run', recipe, '--out', path.join(dir, 'out')), /running: /), perBuild: true },
        {
          name: 'attachedAfterMs',
          run: async (r: string) => {
            const out = path.join(dir, `out-${path.basename(r)}`);
            await time(cli(r, 'run', recipe, '--out', out));
            return JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).attachedAfterMs as number;
          },
          perBuild: true,
        },
      ]
    : []),
];

const samples = new Map<string, number[]>();
const ratios = new Map<string, number[]>();
const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
for (const [, r] of builds) await time(cli(r, '--version')); // warm the page cache
for (let round = 0; round < runs; round++) {
  let floor = 0;
  for (const row of rows) {
    for (const [label, r] of row.perBuild ? builds : builds.slice(0, 1)) {
      const key = row.perBuild ? `${row.name} (${label})` : row.name;
      const ms = await row.run(r);
      if (!row.perBuild) floor = ms;
      push(samples, key, ms);
      push(ratios, key, ms / floor);
    }
  }
  process.stderr.write(`round ${round + 1}/${runs}\r`);
}
process.stderr.write('\n');

const table = [...samples.keys()].map((k) => ({ part: k, ms: Math.round(median(samples.get(k)!)), 'x node -e 0': Number(median(ratios.get(k)!).toFixed(2)) }));
console.log(`gadget-run start-up, ${runs} rounds, medians; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log('| part | ms | × node -e 0 |\n|---|---|---|');
for (const t of table) console.log(`| ${t.part} | ${t.ms} | ${t['x node -e 0']} |`);
fs.mkdirSync(path.join(here, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(here, 'bench/results/startup.json'), JSON.stringify({ runs, loadavg: os.loadavg(), table }, null, 2) + '\n');
fs.rmSync(dir, { recursive: true, force: true });
