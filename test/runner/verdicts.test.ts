/**
 * Fail closed, as a user finds it: each case here passed silently before (exit 0,
 * PASSED) and must now fail the run with a reason that names what happened. Real CLI
 * runs with real gadgets; every summary.json is checked against its published schema.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { notRoot, readJson, runCli, tempDir, writeRecipe } from './cli-helpers.ts';
import { assertValidSummary } from './summary-schema.ts';

async function runRecipeText(name: string, text: string, ...args: string[]) {
  const dir = tempDir();
  const recipe = writeRecipe(dir, `${name}.yaml`, text);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', recipe, '--out', out, ...args]);
  const summary = readJson(path.join(out, 'summary.json'));
  assertValidSummary(summary);
  return { r, summary, out, dir, recipe, report: fs.readFileSync(path.join(out, 'report.md'), 'utf8') };
}

test('a failing workload fails the run; expect_exit says which codes pass', { skip: notRoot }, async () => {
  const recipe = (expect: string) => `name: wl\nrun: exit 3\n${expect}steps:\n  - { id: execs, gadget: trace/exec }\n`;
  const failing = await runRecipeText('wl', recipe(''));
  assert.equal(failing.r.code, 1, failing.r.stdout + failing.r.stderr);
  assert.equal(failing.summary.status, 'failed');
  assert.equal(failing.summary.workload.exitExpected, false);
  assert.deepEqual(failing.summary.reasons, ['the workload exited with 3 (expect_exit: 0)']);
  assert.match(failing.r.stdout, /the workload exited with 3 \(expect_exit: 0\)/);
  for (const expect of ['expect_exit: 3\n', 'expect_exit: [1, 3]\n', 'expect_exit: any\n']) {
    const ok = await runRecipeText('wl', recipe(expect));
    assert.equal(ok.r.code, 0, `${expect}: ${ok.r.stdout}${ok.r.stderr}`);
    assert.equal(ok.summary.status, 'passed');
  }
  const other = await runRecipeText('wl', recipe('expect_exit: [0, 1]\n'));
  assert.equal(other.r.code, 1);
  assert.deepEqual(other.summary.reasons, ['the workload exited with 3 (expect_exit: [0,1])']);
});

// a shell loop of opens with no fork: far more events than a 4 KiB ring holds between drains
const OPENS = 'i=0; while [ $i -lt 20000 ]; do read x < /etc/hostname; i=$((i+1)); done';

test('lost events fail the run, naming the step and the count; allow_lost says how many may go', { skip: notRoot }, async () => {
  const recipe = (allow: string) => `name: lost\nrun: ${OPENS}\n${allow}steps:\n  - { id: opens, gadget: trace/open, buffer: 4KiB }\n`;
  const strict = await runRecipeText('lost', recipe(''));
  const lost = strict.summary.steps[0].lost;
  assert.ok(lost > 0, `a 4 KiB ring overflows under ${OPENS}`);
  assert.equal(strict.r.code, 1, strict.r.stdout + strict.r.stderr);
  assert.equal(strict.summary.status, 'failed');
  assert.equal(strict.summary.reasons.length, 1);
  assert.match(strict.summary.reasons[0], new RegExp(`^step opens lost ${lost} events in the kernel`));
  assert.match(strict.r.stdout, new RegExp(`step opens lost ${lost} events`));
  assert.match(strict.report, new RegExp(`step opens lost ${lost} events`));

  const allowed = await runRecipeText('lost', recipe('allow_lost: true\n'));
  assert.equal(allowed.r.code, 0, allowed.r.stdout + allowed.r.stderr);
  assert.equal(allowed.summary.steps[0].allow_lost, true);
  // a number: at most that many; far fewer than are lost here
  const few = await runRecipeText('lost', recipe('allow_lost: 5\n'));
  assert.equal(few.r.code, 1);
  assert.match(few.summary.reasons[0], /at most 5 may be/);
});

test('ended_by says what ended each step; a duration that cuts a workload short warns', { skip: notRoot }, async () => {
  const { r, summary } = await runRecipeText('ended', `name: ended
run: sleep 1
steps:
  - { id: cut, gadget: trace/exec, duration: 200ms }
  - { id: whole, gadget: trace/exec }
`);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const [cut, whole] = summary.steps;
  assert.equal(cut.ended_by, 'duration');
  assert.equal(whole.ended_by, 'workload');
  assert.equal(cut.warnings.length, 1);
  assert.match(cut.warnings[0], /^its duration \(200ms\) ended this step before the workload exited/);
  assert.equal(whole.warnings, undefined);
});

test('a snapshot never taken is not_run, fails the run unless optional, and its outputs are written empty', { skip: notRoot }, async () => {
  const recipe = (optional: boolean) => `name: snap
run: "true"
steps:
  - { id: procs, gadget: snapshot/process, delay: 5s, optional: ${optional}, outputs: [procs.csv, procs.json, procs.ndjson] }
`;
  const { r, summary, out } = await runRecipeText('snap', recipe(false));
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(summary.steps[0].status, 'not_run');
  assert.match(summary.steps[0].reason, /the snapshot was not taken: .*before its delay of 5\.0s/);
  assert.deepEqual(summary.steps[0].artifacts, ['procs.csv', 'procs.json', 'procs.ndjson']);
  assert.equal(fs.readFileSync(path.join(out, 'procs.csv'), 'utf8'), 'pid,ppid,tid,comm,uid,gid,mntns_id,cgroup_id\n');
  assert.deepEqual(readJson(path.join(out, 'procs.json')), []);
  assert.equal(fs.readFileSync(path.join(out, 'procs.ndjson'), 'utf8'), '');
  const optional = await runRecipeText('snap', recipe(true));
  assert.equal(optional.r.code, 0, optional.r.stdout + optional.r.stderr);
  assert.equal(optional.summary.steps[0].status, 'not_run');
});

test('a failed assertion shows the value it computed and the first offending events, everywhere', { skip: notRoot }, async () => {
  const tag = `ev${process.pid}`;
  const { r, summary, report } = await runRecipeText('evidence', `name: evidence
run: |
  for i in 1 2 3 4 5 6 7 8 9 10 11 12; do /bin/echo ${tag} $i > /dev/null; done
steps:
  - { id: execs, gadget: trace/exec }
assertions:
  - name: no echo
    expr: '$count(steps.execs[args[1] = "${tag}"]) = 0'
`);
  assert.equal(r.code, 1);
  const [a] = summary.assertions;
  assert.equal(a.message, `expected true, got false: $count(steps.execs[args[1] = "${tag}"]) was 12`);
  assert.equal(a.evidence.value, 12);
  assert.equal(a.evidence.total, 12);
  assert.equal(a.evidence.events.length, 10, 'at most 10 events');
  assert.deepEqual(a.evidence.events.map((e: { args: string[] }) => e.args), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => ['/bin/echo', tag, String(i)]));
  assert.deepEqual(Object.keys(a.evidence.events[0]).slice(0, 3), ['pid', 'ppid', 'comm']);
  for (const text of [r.stdout, report]) {
    assert.match(text, new RegExp(`first 10 of 12 events it picked:`));
    assert.match(text, new RegExp(`comm echo args /bin/echo ${tag} 1`));
  }
});

test('a path that resolves to nothing fails the assertion at run time, naming the fields there are', { skip: notRoot }, async () => {
  // the transform's shape cannot be told before the run ($map), so validate lets it through
  const { r, summary } = await runRecipeText('nothing', `name: nothing
run: /bin/true
steps:
  - id: execs
    gadget: trace/exec
    transform: '$map($, function($e) { {"pid": $e.pid, "cmd": $join($e.args, " ")} })'
assertions:
  - name: nothing downloads
    expr: '$count(steps.execs[comm = "curl"]) = 0'
`);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(summary.assertions[0].message, /^steps\.execs\.comm resolves to nothing: none of the \d+ records of steps\.execs has "comm" \(they have: pid, cmd\)$/);
});
