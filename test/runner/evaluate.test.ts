/**
 * Evaluation reads only DIR/raw: it runs on a directory with no kernel and no session,
 * streams outputs, parses a step's events only when something reads them, leaves the
 * raw record in place whatever fails, and does not pass assertions over steps that
 * did not run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { evaluate } from '../../src/runner/evaluate.ts';
import { parseRecipe, type Recipe } from '../../src/runner/recipe.ts';
import { readsOf } from '../../src/runner/references.ts';
import { renderMarkdown, renderTerminal } from '../../src/runner/report.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { readJson, readNdjsonFile, tempDir } from './cli-helpers.ts';
import { captured, EVENTS, fakeOpen, registry } from './evaluate-helpers.ts';

async function run(text: string) {
  const out = tempDir();
  const loaded = parseRecipe(text, 'eval.yaml', registry);
  const summary = await runRecipe(loaded, { outDir: out, objectDir: '/nonexistent', openSession: fakeOpen().open, log: () => {} });
  return { out, summary };
}

test('evaluate runs on a captured directory alone: outputs streamed, assertions over them', async () => {
  const dir = tempDir();
  captured(dir, { execs: EVENTS }, ['pid', 'comm', 'args'], { execs: { status: 'interrupted', ended: 'interrupted' } });
  const recipe: Recipe = {
    name: 'replay',
    steps: [{ id: 'execs', gadget: 'test/stream', outputs: ['e.json', 'e.csv', 'e.ndjson'] }],
    assertions: [{ name: 'curl', expr: '"curl" in steps.execs.comm and stats.execs.status = "interrupted"' }],
  };
  const { steps, assertions } = await evaluate(recipe, dir);
  assert.deepEqual(steps.map((s) => [s.status, s.events, s.artifacts, s.ended_by]), [['interrupted', 3, ['e.json', 'e.csv', 'e.ndjson'], 'signal']]);
  assert.deepEqual(assertions, [{ name: 'curl', passed: true, status: 'passed', message: 'held' }]);
  // JSON streamed line by line: one event per line inside the brackets
  assert.equal(fs.readFileSync(path.join(dir, 'e.json'), 'utf8'), `[\n${EVENTS.map((e) => JSON.stringify(e)).join(',\n')}\n]\n`);
  assert.equal(fs.readFileSync(path.join(dir, 'e.csv'), 'utf8'), 'pid,comm,args\n1,sh,sh -c x\n2,curl,curl https://example.com\n3,ls,ls -l\n');
  assert.deepEqual(readNdjsonFile(path.join(dir, 'e.ndjson')), EVENTS);
});

test('the raw record stays in DIR/raw, with its meta, when a later stage fails', async () => {
  const { out, summary } = await run(`name: keep
steps:
  - id: a
    gadget: test/stream
    duration: 10ms
    transform: '$error("bad data")'
    outputs: [a.json]
`);
  assert.equal(summary.steps[0].status, 'failed');
  assert.deepEqual(readNdjsonFile(path.join(out, 'raw/a.ndjson')), EVENTS);
  const meta = readJson(path.join(out, 'raw/a.meta.json'));
  assert.deepEqual(
    { gadget: meta.gadget, fields: meta.fields, status: meta.status, events: meta.events, lost: meta.lost, ended: meta.ended },
    { gadget: 'test/stream', fields: ['pid', 'comm', 'args'], status: 'ok', events: 3, lost: 0, ended: 'duration' },
  );
  assert.equal(typeof meta.durationMs, 'number');
});

test('a step no transform or assertion reads is never parsed', async () => {
  const dir = tempDir();
  captured(dir, { good: EVENTS, unread: null }, ['pid']);
  fs.writeFileSync(path.join(dir, 'raw/unread.ndjson'), '{"pid": 1}\nthis is not JSON\n');
  const recipe: Recipe = {
    name: 'lazy',
    steps: [{ id: 'good', gadget: 'test/stream' }, { id: 'unread', gadget: 'test/stream', outputs: ['unread.ndjson'] }],
    assertions: [{ name: 'good only', expr: '$count(steps.good) = 3 and stats.unread.events = 0' }],
  };
  const { steps, assertions } = await evaluate(recipe, dir);
  assert.deepEqual(steps.map((s) => s.status), ['ok', 'ok']);
  assert.equal(assertions[0].status, 'passed', assertions[0].message);
  // and one that reads it does parse it, and says why it could not
  const reading = await evaluate({ ...recipe, assertions: [{ name: 'all', expr: '$count(steps.*) > 0' }] }, dir);
  assert.equal(reading.assertions[0].status, 'failed');
  assert.match(reading.assertions[0].message, /could not evaluate: .*JSON/);
});

test('an assertion over a step that did not run is not evaluated and fails the run; over optional ones it is skipped', async () => {
  const { out, summary } = await run(`name: nothing
steps:
  - { id: gone, gadget: test/unsupported, duration: 10ms }
  - { id: maybe, gadget: test/unsupported, duration: 10ms, optional: true }
  - { id: here, gadget: test/stream, duration: 10ms }
assertions:
  - name: nothing downloads
    expr: '$count(steps.gone[comm = "curl"]) = 0'
  - name: no errors counted
    expr: 'stats.gone.lost = 0'
  - name: maybe nothing
    expr: '$count(steps.maybe) = 0'
  - name: here ran
    expr: '$count(steps.here) = 3'
`);
  const reason = 'test/unsupported: unsupported here — needs tracepoint test/lacking: this kernel does not have it';
  assert.deepEqual(summary.assertions, [
    { name: 'nothing downloads', passed: false, status: 'not_evaluated', message: `not evaluated: step gone unsupported: ${reason}` },
    { name: 'no errors counted', passed: false, status: 'not_evaluated', message: `not evaluated: step gone unsupported: ${reason}` },
    { name: 'maybe nothing', passed: false, status: 'skipped', message: `skipped: optional step maybe unsupported: ${reason}` },
    { name: 'here ran', passed: true, status: 'passed', message: 'held' },
  ]);
  assert.equal(summary.status, 'failed');
  assert.deepEqual(readJson(path.join(out, 'summary.json')).assertions, summary.assertions);
  assert.match(renderTerminal(summary, out), /NOT EVALUATED nothing downloads — not evaluated: step gone unsupported/);
  assert.match(renderTerminal(summary, out), /SKIP maybe nothing/);
  assert.match(renderMarkdown(summary), /not evaluated — nothing downloads/);
  assert.match(renderMarkdown(summary), /skipped — maybe nothing/);
});

test('only optional steps missing: their assertions are skipped and the run passes', async () => {
  const { summary } = await run(`name: optional
steps:
  - { id: maybe, gadget: test/unsupported, duration: 10ms, optional: true }
  - { id: here, gadget: test/stream, duration: 10ms }
assertions:
  - { name: maybe nothing, expr: '$count(steps.maybe) = 0' }
  - { name: here ran, expr: '$count(steps.here) = 3' }
`);
  assert.deepEqual(summary.assertions.map((a) => a.status), ['skipped', 'passed']);
  assert.equal(summary.status, 'passed');
});

test('which steps an assertion reads, from its syntax tree; when unsure, all', () => {
  const reads = (e: string) => {
    const r = readsOf(e);
    return [r.events === 'all' ? 'all' : [...r.events].sort(), r.steps === 'all' ? 'all' : [...r.steps].sort()];
  };
  assert.deepEqual(reads('"curl" in steps.execs.comm'), [['execs'], ['execs']]);
  assert.deepEqual(reads('$count(steps.cmds) = 2 and stats.execs.events = 3'), [['cmds'], ['cmds', 'execs']]);
  assert.deepEqual(reads('$$.steps.a.pid = $.steps.b.pid'), [['a', 'b'], ['a', 'b']]);
  assert.deepEqual(reads('steps.a[pid = $$.steps.b[0].pid and $.comm = "x"]'), [['a', 'b'], ['a', 'b']]);
  assert.deepEqual(reads('steps.`odd id`.pid'), [['odd id'], ['odd id']]);
  assert.deepEqual(reads('workload.exitCode = 0'), [[], []]);
  // steps["a"] is a filter over the whole object in JSONata, not a key lookup
  for (const e of ['steps["a"]', '$count(steps.*)', '$keys($)', '$lookup(steps, "a")', '**.pid', '$keys(stats)', '$$']) {
    assert.equal(reads(e)[1], 'all', e);
  }
});
