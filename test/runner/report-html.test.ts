/**
 * report.html (src/runner/report-html.ts): written by every run; opened in
 * headless Chromium it renders with no console message at all (an error, or a
 * request the page's Content-Security-Policy refused, would be one), draws in
 * each chart exactly the events its step captured, and shows the verdict and
 * the failed assertion's evidence. Its size does not grow with the events.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { renderHtml } from '../../src/runner/report-html.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { isRoot, NOT_ROOT } from '../helpers/kernel.ts';
import { tempDir } from '../helpers/session.ts';
import { runCli } from './cli-helpers.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((f) => fs.existsSync(f));

/** The DOM after the page's scripts ran, and every console line Chromium logged. */
function browse(file: string, ...args: string[]): { dom: string; console: string[] } {
  const r = spawnSync(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', ...args, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, 0, r.stderr);
  return { dom: r.stdout, console: r.stderr.split('\n').filter((l) => l.includes(':CONSOLE')) };
}

const RECIPE = `name: report-html
steps:
  - id: execs
    gadget: trace/exec
  - id: opens
    gadget: trace/open
    filter: path~^/etc/hostname$
run: for i in 1 2 3 4 5; do /bin/true; cat /etc/hostname > /dev/null; done; sleep 1.2; /bin/true
assertions:
  - name: no cat ran
    expr: $count(steps.execs[comm = "cat"]) = 0
`;

test('a run\'s report.html renders in Chromium with no console message, its charts hold the captured events, the verdict and evidence show', { skip: !isRoot() ? NOT_ROOT : CHROMIUM ? false : 'needs Debian\'s chromium, which scripts/setup installs' }, async (t) => {
  const dir = tempDir(t);
  const recipe = path.join(dir, 'r.yaml');
  fs.writeFileSync(recipe, RECIPE);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', recipe, '--out', out]);
  assert.equal(r.code, 1, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as Summary;
  const html = path.join(out, 'report.html');
  const { dom, console } = browse(html);
  assert.deepEqual(console, [], 'no console message: no error, no refused request');
  assert.match(dom, /<body[^>]* data-ready="true"/);
  assert.match(dom, /<div class="verdict failed" id="verdict"><strong>FAILED<\/strong>/);
  assert.match(dom, /no cat ran/);
  // the evidence: the five cat execs, in a table
  assert.equal(summary.assertions[0].evidence?.total, 5);
  assert.match(dom, /\(5 events\)/);
  const charts = [...dom.matchAll(/<figure class="chart" id="chart-(\d+)" data-total="(\d+)"[^>]* data-drawn="(\d+)"/g)];
  assert.equal(charts.length, 2, 'a chart per step');
  for (const [, i, total, drawn] of charts) {
    const step = summary.steps[Number(i)];
    assert.ok(step.events > 0);
    assert.equal(Number(total), step.events, `${step.id}: the chart's data is the step's events`);
    assert.equal(Number(drawn), step.events, `${step.id}: what uPlot drew`);
  }
  assert.equal(summary.steps[1].events, 5);
  // a screenshot: the page paints, 1200 px wide
  const png = path.join(dir, 'report.png');
  execFileSync(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', `--screenshot=${png}`, '--window-size=1200,800', `file://${html}`], { stdio: 'ignore', timeout: 90_000 });
  const image = fs.readFileSync(png);
  assert.equal(image.subarray(1, 4).toString(), 'PNG');
  assert.equal(image.readUInt32BE(16), 1200);
});

test('its size does not grow with the events: 1 000 and 300 000 events in 100 s give pages within 2 KiB', async (t) => {
  const sizes: number[] = [];
  for (const n of [1_000, 300_000]) {
    const dir = tempDir(t);
    fs.mkdirSync(path.join(dir, 'raw'));
    const start = Date.parse('2026-01-01T00:00:00Z');
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ timestamp: new Date(start + Math.floor((i / n) * 100_000)).toISOString(), pid: i % 1000, comm: 'x', path: `/tmp/f${i % 7}` }));
    fs.writeFileSync(path.join(dir, 'raw', 's.ndjson'), lines.join('\n') + '\n');
    const summary = {
      schema_version: 1, tool_version: 't', recipe: 'big', file: 'big.yaml', status: 'passed', node: 'n', kernel: 'k',
      startedAt: new Date(start).toISOString(), durationMs: 100_000, reasons: [], assertions: [],
      steps: [{ id: 's', gadget: 'trace/open', status: 'ok', events: n, lost: 0, artifacts: [], durationMs: 100_000 }],
    } as unknown as Summary;
    const html = await renderHtml(summary, dir);
    assert.match(html, new RegExp(`data-total="${n}"`));
    sizes.push(Buffer.byteLength(html));
  }
  assert.ok(Math.abs(sizes[1] - sizes[0]) < 2048, `sizes ${sizes.join(' and ')}`);
});

/** A captured folder with these steps' raw rows, and its summary. */
function capturedSteps(t: TestContext, steps: { id: string; gadget: string; rows: Record<string, unknown>[] }[]): { dir: string; summary: Summary } {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'raw'));
  for (const s of steps) fs.writeFileSync(path.join(dir, 'raw', `${s.id}.ndjson`), s.rows.map((r) => JSON.stringify(r) + '\n').join(''));
  const summary = {
    schema_version: 1, tool_version: 't', recipe: 'bars', file: 'bars.yaml', status: 'passed', node: 'n', kernel: 'k',
    startedAt: '2026-01-01T00:00:00.000Z', durationMs: 60_000, reasons: [], assertions: [],
    steps: steps.map((s) => ({ id: s.id, gadget: s.gadget, status: 'ok', events: s.rows.length, lost: 0, artifacts: [], durationMs: 60_000 })),
  } as unknown as Summary;
  return { dir, summary };
}

/** top/tcp rows: `conns` connections, each sending i*10+interval bytes every interval; a totals row (interval 0) that must not be charted */
function tcpRows(intervals: number, conns: number): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (let iv = 1; iv <= intervals; iv++) {
    for (let c = 0; c < conns; c++) rows.push({ pid: 100 + c, comm: `c${c}`, saddr: '127.0.0.1', daddr: '127.0.0.1', sport: 4000 + c, dport: 80, sent: c * 10 + iv, received: 1, interval: iv, interval_start: 'x', interval_end: 'y' });
  }
  rows.push({ pid: 100, comm: 'c0', saddr: '127.0.0.1', daddr: '127.0.0.1', sport: 4000, dport: 80, sent: 999_999, received: 1, interval: 0, interval_start: 'x', interval_end: 'y' });
  return rows;
}

test('an interval gadget\'s top keys are stacked bars over its intervals, and a histogram\'s buckets are bars: uPlot draws the right numbers', { skip: CHROMIUM ? false : 'no chromium' }, async (t) => {
  const tcp = tcpRows(5, 10);
  const hist = [
    { device: 'vda', major: 253, minor: 0, op: 'read', low_us: 0, high_us: 1, count: 3 },
    { device: 'vda', major: 253, minor: 0, op: 'read', low_us: 2, high_us: 3, count: 5 },
    { device: 'vda', major: 253, minor: 0, op: 'write', low_us: 2, high_us: 3, count: 7 },
  ];
  const { dir, summary } = capturedSteps(t, [{ id: 'talkers', gadget: 'top/tcp', rows: tcp }, { id: 'latency', gadget: 'profile/block-io', rows: hist }]);
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, await renderHtml(summary, dir));
  const { dom, console: lines } = browse(file, '--window-size=1280,2000');
  assert.deepEqual(lines, [], 'no console message');
  const top = /<figure class="bars top" id="top-0" data-total="(\d+)"[^>]* data-drawn="(\d+)" data-series="(\d+)"/.exec(dom);
  assert.ok(top, 'the top chart was drawn');
  // every connection's sent over intervals 1..5, the totals row left out: 10 conns × (10c summed) ... computed here
  const expected = tcp.filter((r) => (r.interval as number) > 0).reduce((a, r) => a + (r.sent as number), 0);
  assert.deepEqual([Number(top[1]), Number(top[2]), Number(top[3])], [expected, expected, 9], '8 top keys and the others');
  const chart = JSON.parse(/<figure class="bars top"[^>]*><figcaption>[^<]*<\/figcaption><script type="application\/json">(.*?)<\/script>/.exec(dom)![1]);
  assert.deepEqual(chart.x, ['1', '2', '3', '4', '5']);
  assert.deepEqual(chart.series['109 c9 127.0.0.1 127.0.0.1'], [91, 92, 93, 94, 95], 'the heaviest key, labelled by pid and its text fields');
  assert.deepEqual(chart.series['2 others'], [1 + 11, 2 + 12, 3 + 13, 4 + 14, 5 + 15]);
  const h = /<figure class="bars histogram" id="histogram-1" data-total="(\d+)"[^>]* data-drawn="(\d+)" data-series="(\d+)"/.exec(dom);
  assert.ok(h, 'the histogram was drawn');
  assert.deepEqual([Number(h[1]), Number(h[2]), Number(h[3])], [15, 15, 2]);
});

test('the top chart stays bounded: 10 000 intervals of 10 keys make at most 600 bars a key', async (t) => {
  const { dir, summary } = capturedSteps(t, [{ id: 'talkers', gadget: 'top/tcp', rows: tcpRows(10_000, 10) }]);
  const html = await renderHtml(summary, dir);
  const chart = JSON.parse(/<figure class="bars top"[^>]*><figcaption>[^<]*<\/figcaption><script type="application\/json">(.*?)<\/script>/.exec(html)![1]);
  assert.equal(chart.x.length, 589); // ceil(10000 / ceil(10000 / 600))
  assert.equal(Object.keys(chart.series).length, 9);
  assert.equal(Object.values(chart.series as Record<string, number[]>).flat().reduce((a, b) => a + b, 0), tcpRows(10_000, 10).filter((r) => (r.interval as number) > 0).reduce((a, r) => a + (r.sent as number), 0));
});
