/**
 * The result path never holds a file whole: a node folder whose events are
 * larger than the child's heap limit goes through the agent's packing and
 * upload, then the CLI's download, merge and evaluation, each in a process of
 * its own (bench/cluster-merge-child.ts, bundled as the product is), and
 * neither process grows by more than a fraction of the file. No cluster: the
 * API server is a folder of ConfigMaps; the code paths are the product's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { buildSync } from 'esbuild';

const root = path.resolve(import.meta.dirname, '../..');
/** events of ~290 bytes: ~175 MB, more than the heap the children are given */
const EVENTS = 600_000;
const HEAP_MB = 96;
/**
 * What either side may grow by, past its start: half the file. The heap limit is the hard bound
 * (a side that held the file whole would die of it); below it V8 collects lazily, so a side can
 * fill most of its 96 MB heap before a collection (65 MB was seen under load) without holding
 * anything it should not.
 */
const GROWTH_SHARE = 0.5;

test('a node’s events larger than the heap limit stream through packing, upload, download, merge and evaluation', { timeout: 600_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-streaming-'));
  try {
    // the child must resolve node_modules: bundle it inside the checkout (build/ is not committed)
    const child = path.join(root, 'build', 'test', `cluster-merge-child-${process.pid}.mjs`);
    buildSync({ entryPoints: [path.join(root, 'bench/cluster-merge-child.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: child, packages: 'external', logLevel: 'warning' });
    const run = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [`--max-old-space-size=${HEAP_MB}`, child, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 }).trim().split('\n').at(-1)!);
    try {
      const made = run('make', path.join(dir, 'n1'), 'n1', String(EVENTS));
      assert.ok(made.bytes > HEAP_MB * 1024 * 1024, `${made.bytes} bytes of events: not more than the heap`);
      const agent = run('agent', path.join(dir, 'n1'), path.join(dir, 'cm'), 'n1', String(256 * 1024 * 1024));
      assert.deepEqual(agent.cut, []);
      assert.ok(agent.chunks > 1);
      fs.writeFileSync(path.join(dir, 'r.yaml'), 'name: s\nduration: 1s\nsteps:\n  - id: opens\n    gadget: trace/open\n    outputs: [opens.ndjson]\n');
      const cli = run('cli', path.join(dir, 'cm'), path.join(dir, 'out'), path.join(dir, 'r.yaml'), 'n1');
      assert.deepEqual(cli.steps, [{ id: 'opens', status: 'ok', events: EVENTS }]);
      // the bytes made the whole trip, and the output is the enriched events
      assert.equal(fs.statSync(path.join(dir, 'out', 'n1', 'raw', 'opens.ndjson')).size, made.bytes);
      assert.equal(fs.statSync(path.join(dir, 'out', 'raw', 'opens.ndjson')).size, made.bytes);
      assert.ok(fs.statSync(path.join(dir, 'out', 'opens.ndjson')).size > made.bytes);
      for (const side of [agent, cli]) {
        const grewMb = (side.peakRssKb - side.baseRssKb) / 1024;
        assert.ok(grewMb < (GROWTH_SHARE * made.bytes) / 1024 ** 2, `${side.role}: RSS grew by ${grewMb.toFixed(0)} MB over ${(made.bytes / 1024 ** 2).toFixed(0)} MB of events`);
      }
    } finally {
      fs.rmSync(child, { force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
