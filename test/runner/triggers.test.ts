/**
 * Triggered steps against the real kernel: trace/exec events of the workload
 * start, scope and stop other trace/exec steps. The workload spells its
 * markers through a variable, so only the commands it runs carry them (its
 * own shell's argv holds "$M-…", not the marker).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { readNdjsonFile, tempDir } from './cli-helpers.ts';
import { kernelSkip, objectDir } from '../helpers/kernel.ts';
import { traceExec } from '../../src/gadgets/trace/exec.ts';
import { assertValidSummary } from './summary-schema.ts';

const skip = kernelSkip(traceExec);

interface Exec {
  timestamp: string;
  pid: number;
  ppid: number;
  comm: string;
  args: string[];
}

async function run(yaml: string, signal?: AbortSignal): Promise<{ summary: Summary; events: (step: string) => Exec[] }> {
  const dir = tempDir();
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const loaded = parseRecipe(yaml, path.join(dir, 'r.yaml'));
  const summary = await runRecipe(loaded, { outDir: out, objectDir: objectDir(), log: () => {}, ...(signal ? { signal, processSignals: false } : {}) });
  assertValidSummary(summary);
  const events = (step: string) => {
    const file = path.join(out, 'raw', `${step}.ndjson`);
    return fs.existsSync(file) ? (readNdjsonFile(file) as Exec[]) : [];
  };
  return { summary, events };
}

const step = (s: Summary, id: string) => s.steps.find((x) => x.id === id)!;

for (const attach of ['lazy', 'preload'] as const) {
  test(`start_on (${attach}): the triggered step sees events only after its trigger and only in its scope`, { skip }, async () => {
    const { summary, events } = await run(`
name: scoped
run: |
  M=trigger
  sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do /bin/true other; sleep 0.2; done' &
  sleep 0.5
  sh -c 'sleep 3; for i in 1 2 3; do /bin/true mine; done' "$M-marker"
  wait
steps:
  - id: trig
    gadget: trace/exec
    filter: 'args~trigger-marker'
  - id: after
    gadget: trace/exec
    start_on: {step: trig}
    scope: {ppid: pid}
    attach: ${attach}
`);
    assert.equal(summary.status, 'passed', summary.reasons.join('; '));
    const [trigger] = events('trig');
    assert.ok(trigger, 'the trigger exec was traced');
    const after = step(summary, 'after');
    assert.equal(after.instances?.length, 1);
    const inst = after.instances![0];
    assert.deepEqual(inst.triggered_by, { step: 'trig', fields: { pid: trigger.pid }, at: trigger.timestamp });
    assert.equal(inst.attach, attach);
    const seen = events('after');
    assert.deepEqual(seen.filter((e) => e.comm === 'true').map((e) => e.args.join(' ')), ['/bin/true mine', '/bin/true mine', '/bin/true mine']);
    for (const e of seen) {
      assert.equal(e.ppid, trigger.pid, `only the trigger's children: ${JSON.stringify(e)}`);
      assert.ok(e.timestamp >= trigger.timestamp, `only after the trigger: ${e.timestamp} < ${trigger.timestamp}`);
    }
    assert.equal(after.events, seen.length);
  });
}

test('stop_on stops the triggered step: nothing after the stop event', { skip }, async () => {
  const { summary, events } = await run(`
name: stopped
run: |
  M=mark
  sh -c true "$M-start"
  sleep 3
  for i in 1 2 3; do /bin/true phase1; done
  sh -c true "$M-stop"
  sleep 2
  for i in 1 2 3; do /bin/true late; done
steps:
  - id: trig
    gadget: trace/exec
    filter: 'args~mark-(start|stop)'
  - id: after
    gadget: trace/exec
    filter: 'args~phase1|late'
    start_on: {step: trig, filter: 'args~mark-start'}
    stop_on: {step: trig, filter: 'args~mark-stop'}
`);
  assert.equal(summary.status, 'passed', summary.reasons.join('; '));
  assert.deepEqual(events('after').map((e) => e.args[1]), ['phase1', 'phase1', 'phase1']);
  const [inst] = step(summary, 'after').instances!;
  assert.equal(inst.ended_by, 'stop_on');
  assert.ok(inst.stoppedAt! >= inst.startedAt!);
});

test('for_each: one instance per distinct value, bounded by max_instances, the rest counted and reported', { skip }, async () => {
  const { summary, events } = await run(`
name: each
run: |
  M=mark
  for i in 1 2 3; do sh -c 'sleep 4; /bin/true child' "$M-each" & done
  wait
steps:
  - id: trig
    gadget: trace/exec
    filter: 'args~mark-each'
  - id: after
    gadget: trace/exec
    filter: 'comm==true'
    start_on: {step: trig}
    for_each: pid
    max_instances: 2
    scope: {ppid: pid}
`);
  assert.equal(summary.status, 'passed', summary.reasons.join('; '));
  const triggers = events('trig');
  assert.equal(triggers.length, 3);
  const after = step(summary, 'after');
  assert.equal(after.instances?.length, 2);
  assert.equal(after.suppressed, 1);
  assert.match(after.warnings!.join('\n'), /1 more distinct value of pid came past max_instances \(2\)/);
  const keys = after.instances!.map((i) => Number(i.key));
  assert.deepEqual(keys, triggers.slice(0, 2).map((t) => t.pid));
  // each instance saw its own child, and the third shell's child nobody
  assert.deepEqual(events('after').map((e) => e.ppid).sort(), [...keys].sort());
  assert.deepEqual(after.instances!.map((i) => i.events), [1, 1]);
});

test('a trigger that never fires: not_triggered, and assertions on it fail closed unless the recipe says otherwise', { skip }, async () => {
  const { summary } = await run(`
name: quiet
duration: 1s
steps:
  - id: trig
    gadget: trace/exec
    filter: 'args~never-ever-marker'
  - {id: strict, gadget: trace/exec, start_on: {step: trig}}
  - {id: empty, gadget: trace/exec, start_on: {step: trig}, if_not_triggered: empty}
  - {id: skipped, gadget: trace/exec, start_on: {step: trig}, if_not_triggered: skip}
assertions:
  - {name: strict, expr: '$count(steps.strict) = 0'}
  - {name: empty, expr: '$count(steps.empty) = 0'}
  - {name: skipped, expr: '$count(steps.skipped) = 0'}
`);
  for (const id of ['strict', 'empty', 'skipped']) {
    assert.equal(step(summary, id).status, 'not_triggered');
    assert.match(step(summary, id).reason!, /its trigger never came: no event of step trig/);
  }
  assert.deepEqual(summary.assertions.map((a) => a.status), ['not_evaluated', 'passed', 'skipped']);
  assert.equal(summary.status, 'failed');
  assert.deepEqual(summary.reasons.length, 1);
  assert.match(summary.reasons[0], /assertion "strict" was not evaluated: .*step strict not_triggered/);
});

test('a signal stops running instances: detached, flushed, and said', { skip }, async () => {
  const abort = new AbortController();
  const running = run(`
name: interrupted
run: |
  M=mark
  sh -c true "$M-go"
  while true; do /bin/true tick; sleep 0.2; done
steps:
  - {id: trig, gadget: trace/exec, filter: 'args~mark-go'}
  - {id: after, gadget: trace/exec, filter: 'args~tick', start_on: {step: trig}, attach: preload}
`, abort.signal);
  setTimeout(() => abort.abort('SIGTERM'), 4000);
  const { summary, events } = await running;
  assert.equal(summary.status, 'interrupted');
  const after = step(summary, 'after');
  assert.equal(after.instances![0].ended_by, 'signal');
  assert.equal(after.status, 'interrupted');
  assert.ok(events('after').length > 0 && events('after').length === after.events, 'what it saw before the signal is written');
});
