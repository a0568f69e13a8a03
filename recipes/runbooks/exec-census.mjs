#!/usr/bin/env zx
// Runbook: "what does this command execute, what does it read in /etc, and what else started
// on the node meanwhile?" — a ticket-ready folder for a CI job that misbehaves.
//
//   zx recipes/runbooks/exec-census.mjs --run 'npm test' [--out DIR]     (or: node …, as root)
//
// It runs a recipe (built here, as an object) around the command with run(), streams every
// exec on the node with stream() while it runs, and writes DIR/ticket.md (the verdict, the
// programs run with their counts, the failed execs, the /etc files read, the neighbours),
// DIR/census.csv, DIR/neighbours.ndjson and DIR/run/ (the recipe run's own artifacts:
// summary.json, report.md, execs.ndjson, raw/). Exit: 0 passed, 1 failed, 3 could not trace
// here, 130 interrupted (Ctrl-C stops the run and still writes the ticket).
import { argv, fs, path } from 'zx';
import { CouldNotTraceError, InterruptedError, run, stream } from 'gadget-run';

const command = argv.run;
if (typeof command !== 'string' || !command.trim()) {
  console.error('usage: exec-census.mjs --run COMMAND [--out DIR]');
  process.exit(2);
}
const out = path.resolve(argv.out ?? `out/exec-census-${new Date().toISOString().replace(/[:.]/g, '-')}`);
await fs.mkdirp(out);

const recipe = {
  name: 'exec-census',
  description: `what ${command} executes and reads in /etc`,
  run: command,
  expect_exit: 'any', // the census is wanted whatever the command's exit; failed execs fail it
  steps: [
    { id: 'execs', gadget: 'trace/exec', outputs: ['execs.ndjson'] },
    { id: 'etc', gadget: 'trace/open', filter: 'path~^/etc/', transform: '$distinct(path)', outputs: ['etc-opens.json'] },
  ],
  assertions: [{ name: 'every exec succeeded', expr: '$count(steps.execs[ret != 0]) = 0', message: 'a program could not be executed' }],
};

// Ctrl-C: the run stops gracefully (steps detach, the verdict is written), then the ticket
const abort = new AbortController();
process.once('SIGINT', () => abort.abort('SIGINT'));

// everything executed on the node while the command runs; the command's own execs are told
// apart afterwards by their pids, which the run's trace records
const live = stream('trace/exec', { queue: 10_000, signal: abort.signal });
await live.ready;
const nodeWide = [];
const collecting = (async () => {
  for await (const e of live) nodeWide.push(e);
})();

let result;
let ended = 'finished';
try {
  result = await run(recipe, { out: path.join(out, 'run'), signal: abort.signal, onProgress: (p) => p.phase === 'attached' && console.error(`exec-census: tracing ${command}`) });
} catch (err) {
  if (!(err instanceof InterruptedError || err instanceof CouldNotTraceError) || !err.result) throw err;
  result = err.result;
  ended = err instanceof InterruptedError ? 'interrupted' : 'could not trace';
}
const liveStats = await live.close();
await collecting;

// the run's own outputs, where run() says they are (a run that could not trace has none)
const [execsFile] = result.paths.steps.execs ?? [];
const [etcFile] = result.paths.steps.etc ?? [];
const execs = execsFile ? fs.readFileSync(execsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
// JSONata gives a one-element result as the element itself
const etc = etcFile ? [fs.readJsonSync(etcFile)].flat().filter((f) => typeof f === 'string') : [];

// per program: how often it ran and how often its exec failed
const programs = new Map();
for (const e of execs) {
  const p = programs.get(e.args[0] ?? e.comm) ?? { runs: 0, failed: 0 };
  p.runs++;
  if (e.ret !== 0) p.failed++;
  programs.set(e.args[0] ?? e.comm, p);
}
const rows = [...programs].sort(([a, x], [b, y]) => y.runs - x.runs || a.localeCompare(b));
const csv = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
fs.writeFileSync(path.join(out, 'census.csv'), ['program,runs,failed', ...rows.map(([p, c]) => [p, c.runs, c.failed].map(csv).join(','))].join('\n') + '\n');

const ours = new Set(execs.map((e) => e.pid));
const neighbours = nodeWide.filter((e) => !ours.has(e.pid));
fs.writeFileSync(path.join(out, 'neighbours.ndjson'), neighbours.map((e) => JSON.stringify(e) + '\n').join(''));
const byComm = new Map();
for (const e of neighbours) byComm.set(e.comm, (byComm.get(e.comm) ?? 0) + 1);

const failed = execs.filter((e) => e.ret !== 0);
// a table cell keeps its pipes; a code span is fenced with more backticks than it holds
const cell = (s) => String(s).replace(/\|/g, '\\|');
const code = (s) => {
  const fence = '`'.repeat(Math.max(0, ...(String(s).match(/`+/g) ?? []).map((m) => m.length)) + 1);
  return `${fence} ${s} ${fence}`;
};
const ticket = `# exec census: ${result.status.toUpperCase()}${ended === 'finished' ? '' : ` (${ended})`}

- command: ${code(command)}${result.workload ? `, exit ${result.workload.exitCode}` : ''}
- node ${result.node}, kernel ${result.kernel}, started ${result.startedAt}, ${(result.durationMs / 1000).toFixed(1)} s
${result.reasons.map((r) => `- ${r}`).join('\n')}

## Programs executed (${execs.length} execs, ${rows.length} programs)

| program | runs | failed |
|---|---|---|
${rows.map(([p, c]) => `| ${cell(p)} | ${c.runs} | ${c.failed} |`).join('\n')}

## Failed execs (${failed.length})

${failed.map((e) => `- ${code(e.args.join(' '))}: ret ${e.ret}, in pid ${e.pid} (child of ${e.pcomm}, pid ${e.ppid})`).join('\n') || 'none'}

## Files read in /etc (${etc.length})

${etc.map((f) => `- ${f}`).join('\n') || 'none'}

## Elsewhere on the node meanwhile (${neighbours.length} execs)

${[...byComm].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([c, n]) => `- ${c}: ${n}`).join('\n') || 'none'}
${liveStats.dropped || liveStats.lost ? `\n(the node-wide stream dropped ${liveStats.dropped} and lost ${liveStats.lost} events)\n` : ''}
## Files

census.csv, neighbours.ndjson, run/summary.json, run/report.md, run/execs.ndjson, run/etc-opens.json, run/raw/ (\`gadget-run replay\` reads it)
`;
fs.writeFileSync(path.join(out, 'ticket.md'), ticket);
console.log(path.join(out, 'ticket.md'));
process.exitCode = { passed: 0, failed: 1, error: 1 }[result.status] ?? (ended === 'interrupted' ? 130 : 3);
