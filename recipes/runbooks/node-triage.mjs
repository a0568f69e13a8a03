#!/usr/bin/env zx
// Runbook: "this node is slow — what is it doing?" Collects, for a while, what an on-call
// engineer looks at first, and writes a ticket-ready folder:
//
//   zx recipes/runbooks/node-triage.mjs [--for 10s] [--out DIR]     (or: node …, as root)
//
// Node-wide, all at once for the same window: on-CPU stacks (profile/cpu: a flame graph
// cpu.svg, cpu.folded, cpu.pb.gz for `go tool pprof`/Parca/Pyroscope), the files read and
// written most (top/file), the TCP connections moving the most bytes (top/tcp), block I/O per
// process and disk (top/block-io), and at the end the processes and sockets (snapshot/*).
// DIR/ticket.md has the verdict, the processes and functions hottest on the CPU, the busiest
// files, talkers and disks, and what listens; DIR/run/ has the run's own artifacts (summary.json,
// report.md, report.html, every step's rows, raw/). Lost events fail the run and the ticket
// says so. Exit: 0 passed, 1 failed, 3 could not trace here, 130 interrupted (Ctrl-C ends the
// window early and still writes the ticket).
import { argv, fs, path } from 'zx';
import { CouldNotTraceError, InterruptedError, run } from 'gadget-run';

const window = String(argv.for ?? '10s');
if (!/^\d+(ms|s|m)$/.test(window)) {
  console.error(`node-triage.mjs: --for ${window}: give a duration such as 10s, 500ms or 2m`);
  process.exit(2);
}
const out = path.resolve(argv.out ?? `out/node-triage-${new Date().toISOString().replace(/[:.]/g, '-')}`);
await fs.mkdirp(out);

// top/*: every interval keeps every row (up to 100 000), and the totals over the window come
// as interval 0; the busiest are picked here, in JavaScript (a JSONata sort of tens of
// thousands of rows can take longer than a transform's budget on a busy node)
const top = { interval: '1s', max_rows: 100000, totals: true };
const recipe = {
  name: 'node-triage',
  description: `what this node does for ${window}`,
  duration: window,
  steps: [
    { id: 'cpu', gadget: 'profile/cpu', outputs: ['cpu.svg', 'cpu.folded', 'cpu.pb.gz', 'cpu.ndjson'] },
    { id: 'files', gadget: 'top/file', ...top, outputs: ['files.ndjson'] },
    { id: 'talkers', gadget: 'top/tcp', ...top, outputs: ['talkers.ndjson'] },
    { id: 'disks', gadget: 'top/block-io', ...top, outputs: ['disks.ndjson'] },
    { id: 'processes', gadget: 'snapshot/process', outputs: ['processes.csv'] },
    { id: 'sockets', gadget: 'snapshot/socket', outputs: ['sockets.csv'] },
  ],
};

const abort = new AbortController();
process.once('SIGINT', () => abort.abort('SIGINT'));

let result;
let ended = 'finished';
try {
  result = await run(recipe, { out: path.join(out, 'run'), signal: abort.signal, onProgress: (p) => p.phase === 'attached' && console.error(`node-triage: watching the node for ${window}`) });
} catch (err) {
  if (!(err instanceof InterruptedError || err instanceof CouldNotTraceError) || !err.result) throw err;
  result = err.result;
  ended = err instanceof InterruptedError ? 'interrupted' : 'could not trace';
}

// a step's rows, from the file run() wrote for it (none when the step did not run)
const rows = (id, ext) => {
  const file = (result.paths.steps[id] ?? []).find((f) => f.endsWith(ext));
  if (!file) return [];
  const text = fs.readFileSync(file, 'utf8');
  if (ext === '.ndjson') return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const [head, ...lines] = text.split('\n').filter(Boolean);
  const cols = parseCsvLine(head);
  return lines.map((l) => Object.fromEntries(parseCsvLine(l).map((v, i) => [cols[i], v])));
};
function parseCsvLine(line) {
  const cells = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '"' && line[i + 1] === '"') (cell += '"'), i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) cells.push(cell), (cell = '');
    else cell += c;
  }
  return [...cells, cell];
}

const samples = rows('cpu', '.ndjson');
const total = samples.reduce((n, s) => n + s.count, 0);
const sumBy = (list, key) => {
  const m = new Map();
  for (const s of list) m.set(key(s), (m.get(key(s)) ?? 0) + s.count);
  return [...m].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0]))).slice(0, 10);
};
const pct = (n) => (total ? `${((100 * n) / total).toFixed(1)} %` : '-');
const cell = (s) => String(s).replace(/\|/g, '\\|');
const table = (head, list) => (list.length ? [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...list.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n') : 'none');
const bytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

// the totals (interval 0), busiest first, 15 at most
const busiest = (id, bytes) => rows(id, '.ndjson').filter((r) => r.interval === 0).sort((a, b) => bytes(b) - bytes(a)).slice(0, 15);
const files = busiest('files', (f) => f.rbytes + f.wbytes);
const talkers = busiest('talkers', (t) => t.sent + t.received);
const disks = busiest('disks', (d) => d.bytes);
const listening = rows('sockets', '.csv').filter((s) => s.state === 'LISTEN' || (s.protocol === 'UDP' && s.dport === '0'));
const processes = rows('processes', '.csv');
const lost = result.steps.filter((s) => s.lost > 0).map((s) => `${s.id}: ${s.lost} lost`);

const ticket = `# node triage: ${result.status.toUpperCase()}${ended === 'finished' ? '' : ` (${ended})`}

${[`node ${result.node}, kernel ${result.kernel}, started ${result.startedAt}, watched ${(result.durationMs / 1000).toFixed(1)} s`, ...result.reasons, ...lost].map((r) => `- ${r}`).join('\n')}

## On the CPU (${total} samples, every CPU at 49 Hz)

${table(['process', 'samples', 'share'], sumBy(samples, (s) => `${s.comm} (${s.pid})`).map(([p, n]) => [p, n, pct(n)]))}

Hottest functions:

${table(['function', 'samples', 'share'], sumBy(samples, (s) => s.leaf).map(([f, n]) => [f, n, pct(n)]))}

Flame graph: run/cpu.svg (open it in a browser); run/cpu.pb.gz for \`go tool pprof\`.

## Files read and written most

${table(['process', 'file', 'read', 'written'], files.map((f) => [`${f.comm} (${f.pid})`, f.file, bytes(f.rbytes), bytes(f.wbytes)]))}

## TCP connections moving the most bytes

${table(['process', 'from', 'to', 'sent', 'received'], talkers.map((t) => [`${t.comm} (${t.pid})`, `${t.saddr}:${t.sport}`, `${t.daddr}:${t.dport}`, bytes(t.sent), bytes(t.received)]))}

## Block I/O

${table(['process', 'disk', 'op', 'I/Os', 'bytes'], disks.map((d) => [`${d.comm} (${d.pid})`, `${d.major}:${d.minor}`, d.op, d.ios, bytes(d.bytes)]))}

## Listening (${listening.length}) — ${processes.length} processes at the end

${table(['protocol', 'address', 'process'], listening.map((s) => [s.protocol, `${s.saddr}:${s.sport}`, s.comm ? `${s.comm} (${s.pid})` : 'no process here (the kernel, or another pid namespace)']))}

## Files

run/summary.json, run/report.md, run/report.html, run/cpu.svg, run/cpu.folded, run/cpu.pb.gz, run/files.ndjson, run/talkers.ndjson, run/disks.ndjson, run/processes.csv, run/sockets.csv, run/raw/ (\`gadget-run replay\` reads it)
`;
fs.writeFileSync(path.join(out, 'ticket.md'), ticket);
console.log(path.join(out, 'ticket.md'));
process.exitCode = { passed: 0, failed: 1, error: 1 }[result.status] ?? (ended === 'interrupted' ? 130 : 3);
