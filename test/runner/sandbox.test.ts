/**
 * JSONata from recipes runs sandboxed: a recursion that never ends, a memory bomb or a
 * backtracking regex fails its transform or assertion with a clear message, the run
 * still writes its summary, and SIGINT stops an evaluation in progress.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { notRoot, readJson, startCli, tempDir, writeRecipe } from './cli-helpers.ts';
import { fakeOpen, registry } from './evaluate-helpers.ts';

const FOREVER = '($f := function($n){ $f($n + 1) }; $f(0))';
const BOMB = '($f := function($n){ 1 + $f($n + 1) }; $f(0))';
const BACKTRACK = '$match("' + 'a'.repeat(40) + '!", /^(a+)+$/)';

async function run(text: string) {
  const out = tempDir();
  const loaded = parseRecipe(text, 'sandbox.yaml', registry);
  const summary = await runRecipe(loaded, { outDir: out, objectDir: '/nonexistent', openSession: fakeOpen().open, log: () => {} });
  return { summary, written: readJson(path.join(out, 'summary.json')) };
}

const recipe = (limits: string, transform: string, assertion: string) => `name: sandbox
${limits}
steps:
  - id: bad
    gadget: test/stream
    duration: 10ms
    transform: '${transform}'
    outputs: [bad.json]
  - id: good
    gadget: test/stream
    duration: 10ms
    transform: '$[pid > 1].comm'
    outputs: [good.json]
assertions:
  - name: runaway
    expr: '${assertion}'
  - name: after it
    expr: '$count(steps.good) = 2'
`;

// the memory bomb gets time enough to run out of memory first, on a busy machine too
for (const [what, expr, limits, message] of [
  ['a recursion that never returns', FOREVER, 'eval_timeout: 1s', 'exceeded its 1s budget'],
  ['a backtracking regex', BACKTRACK, 'eval_timeout: 1s', 'exceeded its 1s budget'],
  ['a memory bomb', BOMB, 'eval_timeout: 2m\neval_memory: 64MiB', 'ran out of memory (64 MB'],
] as const) {
  test(`${what} fails its transform and its assertion alone, and the summary is written`, async () => {
    const { summary, written } = await run(recipe(limits, expr, expr));
    assert.equal(written.status, 'failed');
    const [bad, good] = written.steps;
    assert.equal(bad.status, 'failed');
    assert.ok(bad.reason.startsWith(`transform of step bad ${message}`), bad.reason);
    assert.deepEqual(bad.artifacts, []);
    assert.equal(good.status, 'ok', 'the next transform runs in a fresh worker');
    assert.deepEqual(good.artifacts, ['good.json']);
    assert.equal(written.assertions[0].status, 'failed');
    assert.ok(written.assertions[0].message.startsWith(`assertion "runaway" ${message}`), written.assertions[0].message);
    assert.equal(written.assertions[1].status, 'passed', 'the assertion after it still runs');
    assert.deepEqual(summary.assertions, written.assertions);
  });
}

test('a normal transform and assertion still work in the sandbox', async () => {
  const { written } = await run(recipe('', '$[comm = "curl"].args', 'steps.bad = ["curl", "https://example.com"]'));
  assert.equal(written.status, 'passed', JSON.stringify(written, null, 1));
});

test('the CLI ends an endless transform on SIGINT, writes the summary and exits 130', { skip: notRoot }, async () => {
  const dir = tempDir();
  const file = writeRecipe(dir, 'endless.yaml', `name: endless
eval_timeout: 1h
steps:
  - id: procs
    gadget: snapshot/process
    transform: '${FOREVER}'
    outputs: [procs.json]
`);
  const out = path.join(dir, 'out');
  const cli = startCli(['run', file, '--out', out]);
  await cli.stderrUntil(/step procs: transforming \d+ events/);
  cli.child.kill('SIGINT');
  const r = await cli.done;
  assert.equal(r.code, 130, r.stderr);
  const summary = readJson(path.join(out, 'summary.json'));
  assert.equal(summary.status, 'interrupted');
  assert.equal(summary.steps[0].status, 'failed');
  assert.equal(summary.steps[0].reason, 'transform of step procs was interrupted');
  assert.ok(fs.statSync(path.join(out, 'raw/procs.ndjson')).size > 0, 'the captured processes stay in raw/');
});
