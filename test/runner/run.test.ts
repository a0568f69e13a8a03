/**
 * The run loop with a fake gadget (no kernel, no root): results, transforms,
 * artifacts, assertions, statuses, exit codes and interruption.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { exitCodeFor } from '../../src/runner/summary.ts';
import { readJson, readNdjsonFile, tempDir } from './cli-helpers.ts';
import { EVENTS, fakeOpen, registry } from './evaluate-helpers.ts';
import { assertValidSummary } from './summary-schema.ts';

async function run(text: string, events?: unknown[]) {
  const out = tempDir();
  const loaded = parseRecipe(text, 'fake.yaml', registry);
  const { open } = fakeOpen(events);
  const summary = await runRecipe(loaded, { outDir: out, objectDir: '/nonexistent', openSession: open, log: () => {} });
  return { out, summary };
}

test('results go through the transform into every output format, atomically, and assertions see them', async () => {
  const { out, summary } = await run(`name: fake
steps:
  - id: execs
    gadget: test/stream
    duration: 10ms
    outputs: [raw.ndjson, raw.csv, raw.json]
  - id: cmds
    gadget: test/stream
    duration: 10ms
    transform: '$[comm != "sh"].{"pid": pid, "cmd": $join(args, " ")}'
    outputs: [cmds.ndjson, cmds.csv, cmds.json]
assertions:
  - name: curl ran
    expr: '"curl" in steps.execs.comm'
  - name: two commands
    expr: '$count(steps.cmds) = 2 and stats.execs.events = 3'
`);
  assert.equal(summary.status, 'passed');
  assert.equal(exitCodeFor(summary), 0);
  assert.deepEqual(readNdjsonFile(path.join(out, 'raw.ndjson')), EVENTS);
  assert.deepEqual(readJson(path.join(out, 'raw.json')), EVENTS);
  assert.equal(fs.readFileSync(path.join(out, 'raw.csv'), 'utf8'), 'pid,comm,args\n1,sh,sh -c x\n2,curl,curl https://example.com\n3,ls,ls -l\n');
  const cmds = [{ pid: 2, cmd: 'curl https://example.com' }, { pid: 3, cmd: 'ls -l' }];
  assert.deepEqual(readNdjsonFile(path.join(out, 'cmds.ndjson')), cmds);
  assert.deepEqual(readJson(path.join(out, 'cmds.json')), cmds);
  assert.equal(fs.readFileSync(path.join(out, 'cmds.csv'), 'utf8'), 'pid,cmd\n2,curl https://example.com\n3,ls -l\n');
  assert.deepEqual(summary.assertions.map((a) => a.passed), [true, true]);
  assert.deepEqual(summary.steps.map((s) => [s.id, s.status, s.events, s.lost, s.artifacts.length]), [['execs', 'ok', 3, 0, 3], ['cmds', 'ok', 3, 0, 3]]);
  // nothing but the artifacts and the raw record: no temp files, no staging folders
  assert.deepEqual(fs.readdirSync(out).sort(), ['cmds.csv', 'cmds.json', 'cmds.ndjson', 'raw', 'raw.csv', 'raw.json', 'raw.ndjson', 'report.html', 'report.md', 'summary.json']);
  assert.deepEqual(fs.readdirSync(path.join(out, 'raw')).sort(), ['cmds.meta.json', 'cmds.ndjson', 'containers.json', 'execs.meta.json', 'execs.ndjson', 'run.json']);
  assert.deepEqual(readNdjsonFile(path.join(out, 'raw/cmds.ndjson')), EVENTS, 'raw keeps the events as captured, not transformed');
  const written = readJson(path.join(out, 'summary.json'));
  assert.equal(written.recipe, 'fake');
  assert.equal(written.status, 'passed');
  assert.match(fs.readFileSync(path.join(out, 'report.md'), 'utf8'), /^# fake: passed/);
});

test('a failing assertion fails the run with its message', async () => {
  const { summary } = await run(`name: fake
steps:
  - id: execs
    gadget: test/stream
    duration: 10ms
assertions:
  - name: nothing downloads
    expr: '$count(steps.execs[comm in ["curl","wget"]]) = 0'
  - name: custom message
    expr: 'false'
    message: this is what went wrong
  - name: not a boolean
    expr: 'steps.execs[0].pid'
`);
  assert.equal(summary.status, 'failed');
  assert.equal(exitCodeFor(summary), 1);
  assert.deepEqual(summary.assertions, [
    {
      name: 'nothing downloads',
      passed: false,
      status: 'failed',
      message: 'expected true, got false: $count(steps.execs[comm in ["curl","wget"]]) was 1',
      // the side that was computed, and the events its filter picked
      evidence: { expr: '$count(steps.execs[comm in ["curl","wget"]])', value: 1, total: 1, events: [{ pid: 2, comm: 'curl', args: ['curl', 'https://example.com'] }] },
    },
    { name: 'custom message', passed: false, status: 'failed', message: 'this is what went wrong' },
    { name: 'not a boolean', passed: false, status: 'failed', message: 'expected true, got 1' },
  ]);
});

test('an unsupported step fails the run unless it is optional', async () => {
  const text = (optional: boolean) => `name: fake
steps:
  - id: a
    gadget: test/unsupported
    duration: 10ms
    optional: ${optional}
    outputs: [a.csv]
  - id: b
    gadget: test/stream
    duration: 10ms
`;
  const strict = await run(text(false));
  assert.equal(strict.summary.status, 'failed');
  assert.equal(strict.summary.steps[0].status, 'unsupported');
  assert.match(strict.summary.steps[0].reason!, /needs tracepoint test\/lacking/);
  assert.equal(strict.summary.steps[1].status, 'ok');
  assert.ok(!fs.existsSync(path.join(strict.out, 'a.csv')), 'no artifact for a step that did not run');
  const optional = await run(text(true));
  assert.equal(optional.summary.status, 'passed');
});

test('a transform that throws fails its step, not the others', async () => {
  const { summary } = await run(`name: fake
steps:
  - id: a
    gadget: test/stream
    duration: 10ms
    transform: '$error("bad data")'
    outputs: [a.json]
  - id: b
    gadget: test/stream
    duration: 10ms
    outputs: [b.json]
`);
  assert.equal(summary.status, 'failed');
  assert.equal(summary.steps[0].status, 'failed');
  assert.match(summary.steps[0].reason!, /bad data/);
  assert.deepEqual(summary.steps[1].artifacts, ['b.json']);
});

test('a CSV of no events still has the header, in the gadget field order', async () => {
  const { out } = await run(`name: fake
steps:
  - id: a
    gadget: test/stream
    duration: 10ms
    outputs: [a.csv, a.ndjson]
`, []);
  assert.equal(fs.readFileSync(path.join(out, 'a.csv'), 'utf8'), 'pid,comm,args\n');
  assert.equal(fs.readFileSync(path.join(out, 'a.ndjson'), 'utf8'), '');
});

test('SIGINT stops the steps early, keeps what they captured and says interrupted', async () => {
  const out = tempDir();
  const loaded = parseRecipe(`name: fake
steps:
  - id: a
    gadget: test/stream
    duration: 1h
    outputs: [a.ndjson]
`, 'fake.yaml', registry);
  const { open } = fakeOpen();
  const running = runRecipe(loaded, { outDir: out, objectDir: '/nonexistent', openSession: open, log: () => {} });
  setTimeout(() => process.emit('SIGINT', 'SIGINT'), 50);
  const summary = await running;
  assert.equal(summary.status, 'interrupted');
  assert.equal(summary.signal, 'SIGINT');
  assert.equal(exitCodeFor(summary), 130);
  assert.equal(summary.steps[0].status, 'interrupted');
  assert.deepEqual(readNdjsonFile(path.join(out, 'a.ndjson')), EVENTS);
  assert.equal(process.listenerCount('SIGINT'), 0, 'the run removes its signal handlers');
});

test('sequential steps run one after another', async () => {
  const out = tempDir();
  const order: string[] = [];
  const loaded = parseRecipe(`name: fake
sequential: true
steps:
  - { id: a, gadget: test/stream, duration: 30ms }
  - { id: b, gadget: test/stream, duration: 30ms }
`, 'fake.yaml', registry);
  const { open } = fakeOpen();
  const summary = await runRecipe(loaded, {
    outDir: out,
    objectDir: '/nonexistent',
    log: () => {},
    openSession: async (def, ctx) => {
      order.push(`open ${ctx.id}`);
      const s = await open(def, ctx);
      return { ...s, stop: async () => (order.push(`stop ${ctx.id}`), s.stop()) };
    },
  });
  assert.equal(summary.status, 'passed');
  assert.deepEqual(order, ['open a', 'stop a', 'open b', 'stop b']);
});

test('SIGTERM does the same and maps to exit 143', async () => {
  const out = tempDir();
  const loaded = parseRecipe(`name: fake
steps:
  - { id: a, gadget: test/stream, duration: 1h, outputs: [a.json] }
`, 'fake.yaml', registry);
  const running = runRecipe(loaded, { outDir: out, objectDir: '/nonexistent', openSession: fakeOpen().open, log: () => {} });
  setTimeout(() => process.emit('SIGTERM', 'SIGTERM'), 50);
  const summary = await running;
  assert.equal(summary.status, 'interrupted');
  assert.equal(summary.signal, 'SIGTERM');
  assert.equal(exitCodeFor(summary), 143);
  assert.deepEqual(readJson(path.join(out, 'a.json')), EVENTS);
});

test('every required step unsupported here: could_not_trace (exit 3), assertions not evaluated, the workload not started', async () => {
  const dir = tempDir();
  const marker = path.join(dir, 'workload-ran');
  const loaded = parseRecipe(`name: env
run: touch ${marker}
steps:
  - { id: a, gadget: test/unsupported }
  - { id: b, gadget: test/stream, optional: true }
assertions:
  - { name: about the workload only, expr: 'workload.exitCode = 0' }
  - { name: about a, expr: '$count(steps.a) = 0' }
`, 'env.yaml', registry);
  const summary = await runRecipe(loaded, { outDir: path.join(dir, 'out'), objectDir: '/nonexistent', openSession: fakeOpen().open, log: () => {} });
  assert.equal(summary.status, 'could_not_trace');
  assert.equal(exitCodeFor(summary), 3);
  assert.deepEqual(summary.assertions.map((a) => a.status), ['not_evaluated', 'not_evaluated']);
  assert.equal(summary.steps[0].status, 'unsupported');
  assert.ok(!fs.existsSync(marker), 'the workload did not run: nothing would have watched it');
  assert.deepEqual(summary.reasons, ['step a unsupported: test/unsupported: unsupported here — needs tracepoint test/lacking: this kernel does not have it']);
  assert.deepEqual(summary.steps[0].why, { kind: 'tracepoint', hook: 'tracepoint test/lacking', reason: 'this kernel does not have it' }, 'the reason as data too');
  assertValidSummary(summary);
  // one required step that runs makes it a verdict again (exit 1), as before
  const mixed = parseRecipe(`name: env\nrun: "true"\nsteps:\n  - { id: a, gadget: test/unsupported }\n  - { id: b, gadget: test/stream }\n`, 'env.yaml', registry);
  const s2 = await runRecipe(mixed, { outDir: path.join(dir, 'out2'), objectDir: '/nonexistent', openSession: fakeOpen().open, log: () => {} });
  assert.equal(exitCodeFor(s2), 1);
});

test('a transform that throws names its expression and the position, and keeps the raw events', async () => {
  const { out, summary } = await run(`name: fake
steps:
  - { id: a, gadget: test/stream, duration: 10ms, transform: '$[pid > 0].($number(comm))', outputs: [a.json] }
`);
  assert.equal(summary.steps[0].status, 'failed');
  assert.match(summary.steps[0].reason!, /^transform of step a failed: .*\(at character 20, near "number"\) — in "\$\[pid > 0\]\.\(\$number\(comm\)\)"; its 3 events as captured are kept in raw\/a\.ndjson$/);
  assert.deepEqual(readNdjsonFile(path.join(out, 'raw/a.ndjson')), EVENTS);
});
