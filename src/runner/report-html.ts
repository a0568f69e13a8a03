/**
 * report.html: one self-contained page people look at after a run (`run`,
 * `replay` and `run --cluster` write it beside report.md). The verdict and its
 * reasons at the top; per step its status, a timeline of events per second
 * (one series per node when the events carry one), its first rows in a table
 * that sorts (click a heading) and filters (the box above it), the gadget's
 * own view (profile/block-io's histograms), a profile's flame graph; an
 * interval gadget's top keys as stacked bars over its intervals (by its default
 * sort's first field) and a histogram's buckets as bars; the assertions with
 * their evidence; the workload; a cluster's nodes side by side.
 *
 * Nothing is fetched: uPlot (a small, fast canvas chart library) and its CSS
 * are inlined, the flame graph is a data: image, and a Content-Security-Policy
 * forbids every request the page could make. Its size does not grow with the
 * events: each step is read once, streaming, into per-second counts (at most
 * MAX_BUCKETS points) and its first TABLE_ROWS rows; profiles keep their
 * MAX_STACKS heaviest stacks.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { RAW_DIR } from './capture.ts';
import { flameGraphSvg, stackCounts, type StackCount } from './flamegraph.ts';
import type { Summary, StepSummary } from './summary.ts';
import { findGadget } from '../steps/index.ts';

const TABLE_ROWS = 50;
const MAX_COLUMNS = 12;
const MAX_BUCKETS = 600;
const MAX_STACKS = 2000;
const MAX_CELL = 200;

/** What one pass over a step's events keeps. */
export interface StepDigest {
  /** events read */
  events: number;
  /** per series (node, or "events"): count per bucket; buckets of `bucketS` seconds from `startS` */
  startS: number;
  bucketS: number;
  series: Record<string, number[]>;
  /** the first rows, for the table */
  rows: Record<string, unknown>[];
  /** a profile's stacks (rows with stack and count), heaviest first */
  stacks: StackCount[];
  /** an interval gadget's top keys: `metric` per interval (1, 2, …), the TOP_KEYS heaviest keys and the rest */
  top?: BarChart;
  /** histogram rows (low_us, high_us, count): count per bucket, one series per device and op */
  histogram?: BarChart;
}

/** A bar chart's data: x labels, one series per name (the same length). */
export interface BarChart {
  x: string[];
  series: Record<string, number[]>;
  /** what the bars count (each x's bars are stacked) */
  what: string;
}

/** the keys a top chart shows; the others are one series */
const TOP_KEYS = 8;
/** rows of interval gadgets kept for the top chart (each a few numbers): memory stays bounded */
const MAX_TOP_ROWS = 200_000;
/** fields of interval rows that are not part of what a row counts */
const NOT_KEY = new Set(['interval', 'interval_start', 'interval_end', 'timestamp', 'node']);

/** What names a top row: its pid and its text fields (comm, file, addresses, device), as one label. */
function rowLabel(row: Record<string, unknown>): string {
  const parts: string[] = [];
  if (row.pid !== undefined) parts.push(String(row.pid));
  for (const [k, v] of Object.entries(row)) if (typeof v === 'string' && !NOT_KEY.has(k) && v !== '') parts.push(v);
  const label = parts.join(' ');
  return label.length > 80 ? `${label.slice(0, 80)}…` : label;
}

/** Collects an interval gadget's rows into per-interval values of `metric`, by key; then the top keys. */
class TopCollector {
  private readonly labels = new Map<string, number>();
  private readonly totals: number[] = [];
  private readonly rows: [number, number, number][] = [];
  private maxInterval = 0;
  truncated = false;

  constructor(private readonly metric: string) {}

  add(row: Record<string, unknown>): void {
    const interval = row.interval;
    const value = row[this.metric];
    // interval 0 is the totals row of `totals: true`: not a point in time
    if (typeof interval !== 'number' || interval < 1 || typeof value !== 'number') return;
    if (this.rows.length >= MAX_TOP_ROWS) {
      this.truncated = true;
      return;
    }
    const label = rowLabel(row);
    let id = this.labels.get(label);
    if (id === undefined) this.labels.set(label, (id = this.labels.size));
    this.totals[id] = (this.totals[id] ?? 0) + value;
    this.rows.push([interval, id, value]);
    this.maxInterval = Math.max(this.maxInterval, interval);
  }

  chart(): BarChart | undefined {
    if (!this.rows.length) return undefined;
    const names = [...this.labels.keys()];
    const top = names.map((_, id) => id).sort((a, b) => this.totals[b] - this.totals[a]).slice(0, TOP_KEYS);
    const per = Math.max(1, Math.ceil(this.maxInterval / MAX_BUCKETS));
    const width = Math.ceil(this.maxInterval / per);
    const series: Record<string, number[]> = {};
    const slot = new Map<number, number[]>();
    for (const id of top) slot.set(id, (series[names[id]] = new Array<number>(width).fill(0)));
    const others = new Array<number>(width).fill(0);
    for (const [interval, id, value] of this.rows) (slot.get(id) ?? others)[Math.floor((interval - 1) / per)] += value;
    if (names.length > top.length) series[`${names.length - top.length} others`] = others;
    const x = Array.from({ length: width }, (_, i) => (per === 1 ? String(i + 1) : `${i * per + 1}–${(i + 1) * per}`));
    return { x, series, what: `${this.metric} per interval${this.truncated ? ` (the first ${MAX_TOP_ROWS} rows)` : ''}` };
  }
}

/** Histogram rows (profile/block-io): count per latency bucket, one series per device and op. */
class HistogramCollector {
  private readonly buckets = new Map<number, string>();
  private readonly counts = new Map<string, Map<number, number>>();

  add(row: Record<string, unknown>): void {
    const { low_us: low, high_us: high, count } = row;
    if (typeof low !== 'number' || typeof high !== 'number' || typeof count !== 'number') return;
    this.buckets.set(low, `${low}–${high} µs`);
    const name = [row.device, row.op].filter((v) => typeof v === 'string' && v).join(' ') || 'requests';
    let m = this.counts.get(name);
    if (!m) this.counts.set(name, (m = new Map()));
    m.set(low, (m.get(low) ?? 0) + count);
  }

  chart(): BarChart | undefined {
    if (!this.counts.size) return undefined;
    const lows = [...this.buckets.keys()].sort((a, b) => a - b);
    const series: Record<string, number[]> = {};
    for (const [name, m] of [...this.counts].sort(([a], [b]) => a.localeCompare(b)).slice(0, TOP_KEYS)) series[name] = lows.map((l) => m.get(l) ?? 0);
    return { x: lows.map((l) => this.buckets.get(l)!), series, what: 'requests per latency bucket' };
  }
}

const TIMESTAMP = /"timestamp":"([^"]+)"/;
const NODE = /"node":"([^"]+)"/;

/** Read a step's NDJSON once: per-second counts per node, the first rows, the stacks. */
export async function digestStep(file: string, window?: { startS: number; endS: number }, gadget?: string): Promise<StepDigest> {
  const perSecond = new Map<string, Map<number, number>>();
  const rows: Record<string, unknown>[] = [];
  const stacks: StackCount[] = [];
  let events = 0;
  const def = gadget === undefined ? undefined : findGadget(gadget);
  // an interval gadget's rows are charted by its default sort's first field (top/tcp: sent)
  const metric = def?.mode === 'interval' ? /^-?([a-z0-9_]+)/.exec(def.interval.sort ?? '')?.[1] : undefined;
  const top = metric ? new TopCollector(metric) : undefined;
  const histogram = def?.fields.some((f) => f.name === 'low_us') && def.fields.some((f) => f.name === 'count') ? new HistogramCollector() : undefined;
  if (fs.existsSync(file)) {
    const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line) continue;
      events++;
      // a regex, not JSON.parse, for every line: a million events must not cost seconds
      const ts = TIMESTAMP.exec(line);
      const ms = ts ? Date.parse(ts[1]) : NaN;
      if (!Number.isNaN(ms)) {
        const series = NODE.exec(line)?.[1] ?? 'events';
        let m = perSecond.get(series);
        if (!m) perSecond.set(series, (m = new Map()));
        const s = Math.floor(ms / 1000);
        m.set(s, (m.get(s) ?? 0) + 1);
      }
      if (rows.length < TABLE_ROWS || line.includes('"stack":') || top || histogram) {
        let row: unknown;
        try {
          row = JSON.parse(line);
        } catch {
          continue;
        }
        if (rows.length < TABLE_ROWS && row && typeof row === 'object') rows.push(row as Record<string, unknown>);
        stacks.push(...stackCounts([row]));
        if (row && typeof row === 'object') {
          top?.add(row as Record<string, unknown>);
          histogram?.add(row as Record<string, unknown>);
        }
      }
    }
  }
  // the run's whole span (quiet seconds are zeros), and any event outside it
  const seconds = [...perSecond.values()].flatMap((m) => [...m.keys()]);
  if (seconds.length && window) seconds.push(window.startS, window.endS);
  const startS = seconds.length ? seconds.reduce((a, b) => Math.min(a, b)) : 0;
  const spanS = seconds.length ? seconds.reduce((a, b) => Math.max(a, b)) - startS + 1 : 0;
  const bucketS = Math.max(1, Math.ceil(spanS / MAX_BUCKETS));
  const series: Record<string, number[]> = {};
  for (const [name, m] of [...perSecond].sort(([a], [b]) => a.localeCompare(b))) {
    const counts = new Array<number>(Math.ceil(spanS / bucketS)).fill(0);
    for (const [s, n] of m) counts[Math.floor((s - startS) / bucketS)] += n;
    series[name] = counts;
  }
  stacks.sort((a, b) => b.count - a.count);
  const topChart = top?.chart();
  const histogramChart = histogram?.chart();
  return { events, startS, bucketS, series, rows, stacks: stacks.slice(0, MAX_STACKS), ...(topChart ? { top: topChart } : {}), ...(histogramChart ? { histogram: histogramChart } : {}) };
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** JSON inside a <script> element: nothing in it may close the element */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

function cellText(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? '';
  return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL)}…` : s;
}

function table(rows: Record<string, unknown>[], columns?: string[]): string {
  if (!rows.length) return '<p class="none">no rows</p>';
  const cols = (columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))]).slice(0, MAX_COLUMNS);
  const head = cols.map((c) => `<th>${esc(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(cellText(r[c]))}</td>`).join('')}</tr>`).join('\n');
  return `<div class="tbl"><input type="search" placeholder="filter rows" aria-label="filter rows"><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

function stepSection(step: StepSummary, d: StepDigest, index: number, runStartS: number): string {
  const parts: string[] = [];
  parts.push(`<h3 id="step-${esc(step.id)}"><span class="badge ${esc(step.status)}">${esc(step.status)}</span> ${esc(step.id)} <small>${esc(step.gadget)}</small></h3>`);
  const facts = [`${step.events} events`, `${step.lost} lost`, `${(step.durationMs / 1000).toFixed(1)} s`, step.ended_by ? `ended by ${step.ended_by}` : '', step.truncated ? `${step.truncated} not written (max_bytes)` : ''].filter(Boolean);
  parts.push(`<p>${esc(facts.join(' · '))}</p>`);
  if (step.reason) parts.push(`<p class="reason">${esc(step.reason)}</p>`);
  for (const w of step.warnings ?? []) parts.push(`<p class="warn">${esc(w)}</p>`);
  const names = Object.keys(d.series);
  if (names.length) {
    const total = Object.values(d.series).flat().reduce((a, b) => a + b, 0);
    const peak = Math.max(...names.map((n) => Math.max(...d.series[n])));
    // x: seconds since the run started
    const data = { x: d.series[names[0]].map((_, i) => d.startS - runStartS + i * d.bucketS), series: d.series, per: d.bucketS };
    parts.push(
      `<figure class="chart" id="chart-${index}" data-total="${total}"><figcaption>events per ${d.bucketS === 1 ? 'second' : `${d.bucketS} s`}: ${total} in all, peak ${peak}${names.length > 1 ? `, ${names.length} nodes` : ''}</figcaption>` +
        `<script type="application/json">${scriptJson(data)}</script></figure>`,
    );
  }
  for (const [kind, chart] of [['top', d.top], ['histogram', d.histogram]] as const) {
    if (!chart) continue;
    const total = Object.values(chart.series).flat().reduce((a, b) => a + b, 0);
    const title = kind === 'top' ? `top ${Math.min(TOP_KEYS, Object.keys(chart.series).length)} keys by ${chart.what}` : chart.what;
    parts.push(`<figure class="bars ${kind}" id="${kind}-${index}" data-total="${total}"><figcaption>${esc(title)}: ${total} in all</figcaption><script type="application/json">${scriptJson(chart)}</script></figure>`);
  }
  if (step.report) parts.push(`<pre class="gadget-report">${esc(step.report)}</pre>`);
  if (d.stacks.length) {
    const svg = flameGraphSvg(d.stacks, step.id);
    parts.push(`<figure class="flame"><figcaption>flame graph (${d.stacks.length} stacks${d.stacks.length === MAX_STACKS ? ', the heaviest' : ''})</figcaption><img alt="flame graph of ${esc(step.id)}" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}"></figure>`);
  }
  if (d.rows.length) parts.push(`<details${index === 0 ? ' open' : ''}><summary>first ${d.rows.length} of ${d.events} events</summary>${table(d.rows)}</details>`);
  if (step.artifacts.length) parts.push(`<p>files: ${step.artifacts.map((a) => `<code>${esc(a)}</code>`).join(' ')}</p>`);
  return `<section class="step">${parts.join('\n')}</section>`;
}

function assertionsSection(summary: Summary): string {
  if (!summary.assertions.length) return '';
  const items = summary.assertions.map((a) => {
    const status = a.status ?? (a.passed ? 'passed' : 'failed');
    const ev = a.evidence;
    const evidence = ev
      ? `<div class="evidence"><code>${esc(ev.expr)}</code> = <code>${esc(cellText(ev.value))}</code>${ev.total !== undefined ? ` (${ev.total} events)` : ''}${ev.events?.length ? table(ev.events) : ''}</div>`
      : '';
    return `<li><span class="badge ${esc(status)}">${esc(status)}</span> ${esc(a.name)}: ${esc(a.message)}${evidence}</li>`;
  });
  return `<h2>Assertions</h2><ul class="assertions">${items.join('\n')}</ul>`;
}

function clusterSection(summary: Summary): string {
  const cluster = (summary as { cluster?: { nodes?: Record<string, unknown>[] } }).cluster;
  if (!cluster?.nodes?.length) return '';
  const rows = cluster.nodes.map((n) => ({ node: n.node, phase: n.phase, status: n.status ?? '', attached_ms: n.attachedMs ?? '', api_calls: n.apiCalls ?? '', truncated: (n.truncated as string[] | undefined)?.join(', ') ?? '', message: n.message ?? '' }));
  return `<h2>Nodes</h2>${table(rows)}`;
}

let assets: { js: string; css: string } | undefined;
function chartAssets(): { js: string; css: string } {
  if (!assets) {
    const require = createRequire(import.meta.url);
    const dist = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
    assets = { js: fs.readFileSync(path.join(dist, 'uPlot.iife.min.js'), 'utf8'), css: fs.readFileSync(path.join(dist, 'uPlot.min.css'), 'utf8') };
  }
  return assets;
}

/** The page's own script: draws each chart, sorts and filters the tables. */
const PAGE_SCRIPT = `
const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
for (const fig of document.querySelectorAll('figure.chart')) {
  const d = JSON.parse(fig.querySelector('script').textContent);
  const names = Object.keys(d.series);
  const opts = {
    width: Math.min(1100, document.body.clientWidth - 40), height: 180,
    series: [{ label: 's' }, ...names.map((n, i) => ({ label: n, stroke: colors[i % colors.length], width: 1.5, paths: uPlot.paths.stepped({ align: 1 }) }))],
    axes: [{ label: 'seconds since the run started' }, { label: 'events' }],
    scales: { x: { time: false } },
  };
  const u = new uPlot(opts, [d.x, ...names.map((n) => d.series[n])], fig);
  // what was drawn, for readers of the DOM (and the tests): the sum of every plotted point
  fig.dataset.drawn = String(u.data.slice(1).flat().reduce((a, b) => a + (b || 0), 0));
}
for (const fig of document.querySelectorAll('figure.bars')) {
  const d = JSON.parse(fig.querySelector('script').textContent);
  const names = Object.keys(d.series);
  const x = d.x.map((_, i) => i);
  // stacked: each series drawn as the sum of itself and those below it, the tallest first, so each shows above the next
  const own = names.map((n) => d.series[n]);
  const ys = own.map((_, i) => x.map((j) => own.slice(0, i + 1).reduce((a, s) => a + s[j], 0)));
  const order = names.map((_, i) => names.length - 1 - i);
  const opts = {
    width: Math.min(1100, document.body.clientWidth - 40), height: 220,
    series: [{ label: 'x' }, ...order.map((i) => ({
      label: names[i], stroke: colors[i % colors.length], fill: colors[i % colors.length] + 'cc',
      paths: uPlot.paths.bars({ size: [0.8, 60] }),
      points: { show: false },
    }))],
    axes: [{ values: (u, ticks) => ticks.map((t) => d.x[t] ?? '') }, { label: d.what }],
    scales: { x: { time: false, range: [-0.5, x.length - 0.5] } },
  };
  const u = new uPlot(opts, [x, ...order.map((i) => ys[i])], fig);
  // what the bars stand for, as plotted (the tests read it): the sum of every series' own values
  fig.dataset.drawn = String(names.reduce((a, name) => a + d.series[name].reduce((p, v) => p + v, 0), 0));
  fig.dataset.series = String(u.series.length - 1);
}
for (const box of document.querySelectorAll('.tbl')) {
  const input = box.querySelector('input');
  const table = box.querySelector('table');
  const body = table.tBodies[0];
  input.addEventListener('input', () => {
    const q = input.value.toLowerCase();
    for (const tr of body.rows) tr.hidden = q !== '' && !tr.textContent.toLowerCase().includes(q);
  });
  table.tHead.rows[0].querySelectorAll('th').forEach((th, col) => {
    th.addEventListener('click', () => {
      const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
      for (const other of table.tHead.rows[0].cells) delete other.dataset.dir;
      th.dataset.dir = dir;
      const key = (tr) => tr.cells[col].textContent;
      const rows = [...body.rows].sort((a, b) => {
        const x = key(a), y = key(b);
        const n = Number(x) - Number(y);
        const c = Number.isNaN(n) ? x.localeCompare(y) : n;
        return dir === 'asc' ? c : -c;
      });
      body.append(...rows);
    });
  });
}
document.body.dataset.ready = 'true';
`;

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 20px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { margin-top: 28px; border-bottom: 1px solid #ddd; } h3 small { color: #666; font-weight: normal; }
.verdict { padding: 12px 16px; border-radius: 6px; margin: 12px 0; font-size: 18px; }
.verdict.passed { background: #e6f4ea; border: 1px solid #34a853; } .verdict:not(.passed) { background: #fce8e6; border: 1px solid #d93025; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; background: #eee; }
.badge.ok, .badge.passed { background: #e6f4ea; } .badge.failed, .badge.unsupported, .badge.truncated, .badge.interrupted, .badge.not_run, .badge.not_evaluated { background: #fce8e6; }
.reason { color: #a50e0e; } .warn { color: #8a5300; } .none { color: #666; }
table { border-collapse: collapse; font-size: 12px; } th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { cursor: pointer; background: #f6f6f6; } th[data-dir=asc]::after { content: ' ▲'; } th[data-dir=desc]::after { content: ' ▼'; }
.tbl { overflow-x: auto; } .tbl input { margin: 4px 0; }
figure { margin: 8px 0; } figure.flame img { max-width: 100%; border: 1px solid #ddd; }
.gadget-report { background: #f6f6f6; padding: 8px; overflow-x: auto; }
`;

/** The page for a judged run; `dir` holds raw/ (a run's out folder, a replay's or a cluster's merged capture). */
export async function renderHtml(summary: Summary, dir: string, redact: (v: unknown) => unknown = (v) => v): Promise<string> {
  const { js, css } = chartAssets();
  const runStartMs = Date.parse(summary.startedAt);
  const runStartS = Number.isNaN(runStartMs) ? 0 : Math.floor(runStartMs / 1000);
  const window = Number.isNaN(runStartMs) ? undefined : { startS: runStartS, endS: Math.floor((runStartMs + summary.durationMs) / 1000) };
  const digests = await Promise.all(summary.steps.map(async (s) => {
    const d = await digestStep(path.join(dir, RAW_DIR, `${s.id}.ndjson`), window, s.gadget);
    // the raw record was redacted when capture sealed it; a replay's newer patterns apply here too
    return { ...d, rows: d.rows.map((r) => redact(r) as Record<string, unknown>) };
  }));
  const w = summary.workload;
  const header = [
    `<h1>${esc(summary.recipe)}</h1>`,
    `<p>${esc(summary.node)} · ${esc(summary.kernel)} · started ${esc(summary.startedAt)} · ${(summary.durationMs / 1000).toFixed(1)} s · gadget-run ${esc(summary.tool_version)}</p>`,
    `<div class="verdict ${esc(summary.status)}" id="verdict"><strong>${esc(summary.status.toUpperCase())}</strong>${summary.reasons.length ? `<ul>${summary.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : ''}${summary.error ? `<p>${esc(summary.error)}</p>` : ''}</div>`,
  ];
  if (w) header.push(`<p>workload <code>${esc(w.command.trim())}</code>: exit ${esc(w.exitCode ?? 'none')}${w.stoppedBy ? `, stopped by ${esc(w.stoppedBy)}` : ''}${w.user ? `, as ${esc(w.user.name)}` : ''}</p>`);
  const overview = table(summary.steps.map((s) => ({ step: s.id, gadget: s.gadget, status: s.status, events: s.events, lost: s.lost, seconds: (s.durationMs / 1000).toFixed(1) })));
  const body = [
    ...header,
    assertionsSection(summary),
    `<h2>Steps</h2>${overview}`,
    ...summary.steps.map((s, i) => stepSection(s, digests[i], i, runStartS)),
    clusterSection(summary),
  ].join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(summary.recipe)}: ${esc(summary.status)}</title>
<style>${css}${STYLE}</style></head>
<body>
${body}
<script>${js}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
