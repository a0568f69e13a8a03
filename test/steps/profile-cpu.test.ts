import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { flameGraphSvg, stackCounts } from '../../src/runner/flamegraph.ts';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { stepContext, tempDir, traceWhile, uniqueToken, type Event } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['profile/cpu'];

/** Run a command to its end; resolves with its pid. */
async function runToEnd(file: string, args: string[]): Promise<number> {
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, `${file} exited ${code}`);
  return child.pid!;
}

const samples = (rows: Event[]) => rows.reduce((n, r) => n + (r.count as number), 0);

/** The hottest leaf of a process: the function its samples were in most. */
function hottestLeaf(rows: Event[]): string {
  const byLeaf = new Map<string, number>();
  for (const r of rows) byLeaf.set(r.leaf as string, (byLeaf.get(r.leaf as string) ?? 0) + (r.count as number));
  return [...byLeaf].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
}

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((f) => fs.existsSync(f));

describe('profile/cpu', { skip: kernelSkip(def) }, () => {
  test('a C busy loop: its hottest frame is gadget_hot_loop, under its callers, symbolized after it exited', async (t) => {
    const bin = compileFixture(t, 'hot_loop', ['-g', '-fno-omit-frame-pointer']);
    let pid = 0;
    const { outcome, events } = await traceWhile(def, stepContext(t, { params: { frequency: 99 } }), async () => {
      pid = await runToEnd(bin, ['1']);
    });
    assert.equal(outcome.lost, 0);
    const mine = events.filter((e) => e.pid === pid);
    assert.ok(samples(mine) >= 20, `~99 samples for 1 s of CPU, got ${samples(mine)}: ${JSON.stringify(mine)}`);
    assert.equal(hottestLeaf(mine), 'gadget_hot_loop');
    const hot = mine.filter((r) => r.leaf === 'gadget_hot_loop');
    assert.ok(samples(hot) / samples(mine) > 0.8, `most samples in the loop: ${samples(hot)} of ${samples(mine)}`);
    for (const r of hot) assert.match(r.stack as string, /^hot_loop;.*main;gadget_hot_caller;gadget_hot_loop$/, 'comm, then outermost to innermost');
    // a sample between the fork and the exec is the child still running node's code, under
    // node's comm: the gadget reports what ran (it failed a quiet CI run when it asked for hot_loop only)
    const beforeExec = mine.filter((r) => r.comm !== 'hot_loop');
    assert.ok(beforeExec.every((r) => !String(r.stack).includes('gadget_hot')), `only the child before its exec (the forking thread's comm) is not hot_loop: ${JSON.stringify(beforeExec)}`);
  });

  test('a Node function under --perf-basic-prof is named from /tmp/perf-PID.map', async (t) => {
    const fn = uniqueToken('gadgetHotJs').replace(/-/g, '_');
    const script = `function ${fn}(ms) { const end = Date.now() + ms; let x = 0; while (Date.now() < end) for (let i = 0; i < 1e5; i++) x = (x * 31 + i) | 0; return x; } ${fn}(1500);`;
    let pid = 0;
    const { events } = await traceWhile(def, stepContext(t, { params: { user_only: true } }), async () => {
      pid = await runToEnd(process.execPath, ['--perf-basic-prof', '-e', script]);
    });
    t.after(() => fs.rmSync(`/tmp/perf-${pid}.map`, { force: true }));
    const mine = events.filter((e) => e.pid === pid);
    const named = mine.filter((r) => (r.stack as string).includes(fn));
    assert.ok(samples(named) / samples(mine) > 0.5, `most samples under ${fn}: ${samples(named)} of ${samples(mine)}\n${mine.map((r) => `${r.count} ${r.stack}`).join('\n')}`);
    assert.match(hottestLeaf(mine), new RegExp(fn), 'the hottest frame is the JS function itself');
    assert.ok(mine.every((r) => !(r.stack as string).includes('_[k]')), 'user_only: no kernel frames');
  });

  test('kernel_only: kernel frames alone; a pid filter in the kernel keeps out every other process', async (t) => {
    const bin = compileFixture(t, 'hot_loop', ['-g', '-fno-omit-frame-pointer']);
    const { events } = await traceWhile(def, stepContext(t, { params: { kernel_only: true, frequency: 199 }, filter: `pid==${process.pid}` }), () => runToEnd(bin, ['0.3']));
    assert.ok(events.every((e) => e.pid === process.pid), JSON.stringify(events.map((e) => e.pid)));
    for (const r of events) {
      const frames = (r.stack as string).split(';').slice(1);
      assert.ok(frames.every((f) => f.endsWith('_[k]') || f === '[no stack]'), r.stack as string);
    }
  });

  test('the flame graph SVG opens in headless Chromium and shows the hot function; its search runs there', { skip: CHROMIUM ? false : 'needs Debian\'s chromium, which scripts/setup installs' }, async (t) => {
    const bin = compileFixture(t, 'hot_loop', ['-g', '-fno-omit-frame-pointer']);
    let pid = 0;
    const { events } = await traceWhile(def, stepContext(t), async () => {
      pid = await runToEnd(bin, ['1']);
    });
    const dir = tempDir(t);
    const svg = path.join(dir, 'hot.svg');
    fs.writeFileSync(svg, flameGraphSvg(stackCounts(events.filter((e) => e.pid === pid)), 'hot_loop'));
    const browse = (...args: string[]) => execFileSync(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', ...args], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 }).toString();
    // the DOM after the page's script ran: the frame's label is drawn, and a search from the URL matched
    const dom = browse('--dump-dom', `file://${svg}?s=gadget_hot_loop`);
    assert.match(dom, /<text [^>]*>gadget_hot_loop<\/text>/);
    const matched = /Matched: ([\d.]+)%/.exec(dom);
    assert.ok(matched && Number(matched[1]) > 80, `the search matched most samples: ${matched?.[0]}`);
    const png = path.join(dir, 'hot.png');
    browse(`--screenshot=${png}`, '--window-size=1200,500', `file://${svg}`);
    const image = fs.readFileSync(png);
    assert.equal(image.subarray(1, 4).toString(), 'PNG');
    // 1200 px wide, as the SVG (IHDR width)
    assert.equal(image.readUInt32BE(16), 1200);
  });
});
