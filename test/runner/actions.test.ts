/**
 * on_success / on_failure / on_cancel / on_exit: real runs (real BPF, a real workload) whose
 * actions run as a non-root user with the run's files in their environment, bounded by a
 * timeout that kills their process group; their ends in summary.json and report.md, the
 * verdict untouched. Recipe problems with actions are errors with file:line:col.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { InterruptedError, run, validate } from '../../src/api/index.ts';
import { actionUser, hooksFor } from '../../src/runner/actions.ts';
import type { Recipe } from '../../src/runner/recipe.ts';
import { lookupUser } from '../../src/runner/workload.ts';
import { kernelSkip, objectDir } from '../helpers/kernel.ts';
import { assertValidSummary } from './summary-schema.ts';
import { readJson, tempDir, writeRecipe } from './cli-helpers.ts';

const skip = kernelSkip();

/**
 * zx script actions run as `nobody` with gadget-run's own zx: in a checkout nobody can read (a
 * clone in a private folder, mode 0700, as users clone into their homes) the action is not run,
 * with the reason; the tests below check whichever of the two this checkout gives.
 */
const ZX_CLI = createRequire(import.meta.url).resolve('zx/package.json').replace(/package\.json$/, 'build/cli.js');
const nobodyReadsZx = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', ZX_CLI]).status === 0;
function assertNotReadable(action: { status: string; reason?: string }): void {
  assert.equal(action.status, 'not_run');
  assert.match(action.reason!, /^nobody cannot read \/.+ \(a folder on its path is closed to it, e\.g\. a checkout in a private folder\): give gadget-run and the script a place nobody can read, or --user another user$/);
}

/** A folder the action's user (nobody) can read: mkdtemp makes 0700 ones. */
function openDir(prefix: string): string {
  const dir = tempDir(prefix);
  fs.chmodSync(dir, 0o755);
  return dir;
}

function recipe(run: string, actions: Partial<Recipe>): Recipe {
  return { name: 'actions', run, steps: [{ id: 'execs', gadget: 'trace/exec' }], ...actions };
}

/** processes whose command line holds `token` */
function alive(token: string): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(token);
    } catch {
      return false;
    }
  }).map(Number);
}

test('which lists run for which verdict: an interrupted run is cancelled, not failed (as GitHub Actions)', () => {
  assert.deepEqual(hooksFor('passed'), ['on_success', 'on_exit']);
  assert.deepEqual(hooksFor('failed'), ['on_failure', 'on_exit']);
  assert.deepEqual(hooksFor('error'), ['on_failure', 'on_exit']);
  assert.deepEqual(hooksFor('could_not_trace'), ['on_failure', 'on_exit']);
  assert.deepEqual(hooksFor('interrupted'), ['on_cancel', 'on_exit']);
});

test('a shell string, an action with neither or both of run and script, args without a script, a missing script: errors with file:line:col', () => {
  const dir = tempDir('gadget-run-actions-');
  const file = writeRecipe(dir, 'bad.yaml', [
    'name: bad',
    'duration: 1s',
    'steps:',
    '  - {id: execs, gadget: trace/exec}',
    'on_failure: "curl -T summary.json https://example.invalid"',
    'on_success:',
    '  - run: "echo hi"',
    '  - {name: nothing}',
    '  - {run: [echo], script: x.mjs}',
    '  - {run: [echo], args: [a]}',
    '  - script: missing.mjs',
    '',
  ].join('\n'));
  const r = validate(file);
  assert.equal(r.ok, false);
  const lines = r.problems.map((p) => `${p.where} ${p.path}: ${p.message}`);
  const has = (re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `no problem matching ${re} in:\n${lines.join('\n')}`);
  has(/bad\.yaml:5:13 on_failure: must be array — a list of actions/);
  has(/bad\.yaml:7:10 on_success\[0\]\.run: must be array — the command as an argv list, run without a shell.*a shell string is not accepted/);
  has(/bad\.yaml:8:5 on_success\[1\]: an action needs run: \[argv…\].*or script: file\.mjs/);
  has(/on_success\[2\]: an action is run: or script:, not both/);
  has(/on_success\[3\]\.args: args are a script's/);
  has(new RegExp(`bad\\.yaml:11:13 on_success\\[4\\]\\.script: no script ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/missing\\.mjs`));
  const ok = writeRecipe(dir, 'ok.yaml', 'name: ok\nduration: 1s\nsteps: [{id: execs, gadget: trace/exec}]\non_failure: [{run: [/bin/true], timeout: 5s}]\n');
  assert.equal(validate(ok).ok, true);
});

test('actions never run as root unless asked: --user root, or sudo\'s user', () => {
  const root = { name: 'root', uid: 0, gid: 0, home: '/root' };
  const nobody = lookupUser('nobody')!;
  assert.deepEqual(actionUser(root, root, undefined), root, '--user root');
  assert.deepEqual(actionUser(undefined, nobody, undefined), nobody, 'the invoking (sudo) user');
});

test('actions of root\'s run: refused for a root-owned recipe, run as the owner of a recipe someone else owns', { skip: process.getuid?.() !== 0 && 'needs root (chowns the recipe to nobody)' }, () => {
  const root = { name: 'root', uid: 0, gid: 0, home: '/root' };
  const nobody = lookupUser('nobody')!;
  const dir = tempDir('gadget-run-actions-');
  const file = writeRecipe(dir, 'r.yaml', 'name: r\n');
  const refused = actionUser(undefined, root, file, dir);
  assert.ok('refused' in refused && /never run as root unless the command line says --user root/.test(refused.refused));
  fs.chownSync(file, nobody.uid, nobody.gid);
  assert.equal((actionUser(undefined, root, file, dir) as { uid: number }).uid, nobody.uid, 'the owner of the recipe');
});

test('on_failure runs after a failed verdict as the --user, with the run\'s files in its environment; on_success does not; on_exit does; a failing action changes nothing', { skip }, async () => {
  const dir = openDir('gadget-run-actions-');
  const out = path.join(dir, 'out');
  const result = await run(
    recipe('exit 3', {
      on_success: [{ name: 'never', run: ['true'] }],
      on_failure: [
        { name: 'report', run: ['sh', '-c', 'id -u; echo "$GADGET_RUN_STATUS $GADGET_RUN_EXIT_CODE $GADGET_RUN_RECIPE $GADGET_RUN_HOOK"; echo "$GADGET_RUN_OUT"; head -c 2 "$GADGET_RUN_SUMMARY"; echo; test -r "$GADGET_RUN_REPORT" && echo report-readable; echo to-stderr >&2'] },
        { name: 'broken', run: ['sh', '-c', 'echo about to fail; exit 7'] },
        { name: 'no-such', run: ['/nonexistent/gadget-run-action'] },
      ],
      on_exit: [{ run: ['true'] }],
    }),
    { out, objects: objectDir(), user: 'nobody' },
  );
  assert.equal(result.status, 'failed', 'the workload exited 3: the actions do not change that');
  const summary = readJson(result.paths.summary);
  assertValidSummary(summary);
  assert.deepEqual(summary.actions.map((a: any) => [a.hook, a.name, a.status, a.exitCode]), [
    ['on_failure', 'report', 'ok', 0],
    ['on_failure', 'broken', 'failed', 7],
    ['on_failure', 'no-such', 'failed', 127],
    ['on_exit', 'on_exit-1', 'ok', 0],
  ]);
  const [report, broken, noSuch] = summary.actions;
  assert.deepEqual(report.user, { name: 'nobody', uid: 65534, gid: 65534 });
  assert.deepEqual(report.command.slice(0, 2), ['sh', '-c']);
  assert.equal(report.output_tail, `65534\nfailed 1 actions on_failure\n${path.resolve(out)}\n{\n\nreport-readable\nto-stderr\n`);
  assert.equal(report.log, 'actions/report.log');
  assert.equal(fs.readFileSync(path.join(out, report.log), 'utf8'), report.output_tail);
  assert.equal(broken.reason, 'exited with 7');
  assert.match(noSuch.output_tail, /nonexistent/);
  assert.deepEqual(result.actions, summary.actions, 'the API result carries them');
  const md = fs.readFileSync(result.paths.report, 'utf8');
  assert.match(md, /## Actions/);
  assert.match(md, /\| on\\_failure \| broken \| failed \| 7 \|/);
  assert.match(md, /broken: exited with 7\n\n```text\nabout to fail\n```/);
});

test('an action that outlives its timeout is killed with everything in its process group, and says so', { skip }, async () => {
  const dir = openDir('gadget-run-actions-');
  const token = `gadget-run-action-${process.pid}-${Date.now()}`;
  const result = await run(
    recipe('true', { on_success: [{ name: 'slow', timeout: '1s', run: ['sh', '-c', `sh -c 'sleep 300; : ${token}' & echo started; sleep 300; : ${token}`] }] }),
    { out: path.join(dir, 'out'), objects: objectDir(), user: 'nobody' },
  );
  assert.equal(result.status, 'passed');
  const [slow] = result.actions!;
  assert.equal(slow.status, 'timed_out');
  assert.equal(slow.timeoutMs, 1000);
  assert.match(slow.reason!, /^timed out after 1\.0s: its process group was killed/);
  assert.equal(slow.signal, 'SIGTERM');
  assert.equal(slow.output_tail, 'started\n');
  assert.deepEqual(alive(token), [], 'the background child went with it');
});

test('a zx script action reads the summary with zx\'s globals, as the user', { skip }, async () => {
  const dir = openDir('gadget-run-actions-');
  fs.writeFileSync(path.join(dir, 'ticket.mjs'), [
    'const summary = JSON.parse(await fs.readFile(process.env.GADGET_RUN_SUMMARY, "utf8"));',
    'const who = (await $`id -un`).stdout.trim();',
    'echo(`${summary.recipe} ${summary.status} steps=${summary.steps.length} as=${who} args=${argv._.join(",")}`);',
    'await fs.writeFile(path.join(process.env.GADGET_RUN_OUT, "..", "ticket.txt"), summary.status);',
    '',
  ].join('\n'));
  fs.chmodSync(dir, 0o777); // the script writes beside the out folder
  const file = writeRecipe(dir, 'r.yaml', 'name: zx-action\nrun: "true"\nsteps: [{id: execs, gadget: trace/exec}]\non_success: [{script: ticket.mjs, args: [a, b]}]\n');
  const result = await run(file, { out: path.join(dir, 'out'), objects: objectDir(), user: 'nobody' });
  const [action] = result.actions!;
  if (!nobodyReadsZx) return assertNotReadable(action);
  assert.equal(action.status, 'ok', action.output_tail);
  assert.equal(action.script, 'ticket.mjs');
  assert.deepEqual(action.args, ['a', 'b']);
  assert.equal(action.output_tail, 'zx-action passed steps=1 as=nobody args=a,b\n');
  assert.equal(fs.readFileSync(path.join(dir, 'ticket.txt'), 'utf8'), 'passed');
  assert.equal(fs.statSync(path.join(dir, 'ticket.txt')).uid, 65534);
});

test('an interrupted run runs on_cancel and on_exit, not on_failure; actions: false runs none', { skip }, async () => {
  const dir = openDir('gadget-run-actions-');
  const ac = new AbortController();
  const actions = { on_failure: [{ name: 'fail', run: ['true'] }], on_cancel: [{ name: 'cancel', run: ['sh', '-c', 'echo $GADGET_RUN_STATUS $GADGET_RUN_EXIT_CODE'] }], on_exit: [{ name: 'always', run: ['true'] }] };
  const err = await run(recipe('sleep 30', actions), {
    out: path.join(dir, 'out'), objects: objectDir(), user: 'nobody', signal: ac.signal,
    onProgress: (p) => p.phase === 'attached' && setTimeout(() => ac.abort(), 200),
  }).then(() => assert.fail('an abort rejects'), (e: unknown) => e);
  assert.ok(err instanceof InterruptedError);
  assert.deepEqual(err.result.actions!.map((a) => [a.name, a.status]), [['cancel', 'ok'], ['always', 'ok']]);
  assert.equal(err.result.actions![0].output_tail, 'interrupted 130\n');
  const none = await run(recipe('exit 1', actions), { out: path.join(dir, 'out2'), objects: objectDir(), user: 'nobody', actions: false });
  assert.equal(none.status, 'failed');
  assert.equal(none.actions, undefined);
  assert.equal(fs.existsSync(path.join(dir, 'out2', 'actions')), false);
});

test('as root without --user and no non-root owner, actions are not run and say why', { skip }, async () => {
  const dir = openDir('gadget-run-actions-');
  const file = writeRecipe(dir, 'r.yaml', 'name: r\nrun: "true"\nsteps: [{id: execs, gadget: trace/exec}]\non_success: [{run: [touch, /tmp/should-not-exist]}]\n');
  const cwd = process.cwd();
  process.chdir(dir); // root-owned, as the recipe
  try {
    const env = process.env.SUDO_UID;
    delete process.env.SUDO_UID;
    try {
      const result = await run(file, { out: path.join(dir, 'out'), objects: objectDir() });
      const [a] = result.actions!;
      assert.equal(a.status, 'not_run');
      assert.match(a.reason!, /never run as root unless the command line says --user root/);
      assert.equal(a.user, undefined);
    } finally {
      if (env !== undefined) process.env.SUDO_UID = env;
    }
  } finally {
    process.chdir(cwd);
  }
  assert.equal(os.userInfo().uid, 0);
});

test('recipes/job-failure-ticket.yaml: a failed job gets its ticket from runbooks/ticket.mjs, as the user', { skip }, async (t) => {
  const dir = openDir('gadget-run-actions-');
  const tickets = path.join(dir, 'tickets');
  fs.mkdirSync(tickets, { mode: 0o777 });
  fs.chmodSync(tickets, 0o777);
  process.env.GADGET_RUN_TICKETS = tickets;
  t.after(() => delete process.env.GADGET_RUN_TICKETS);
  const example = path.resolve(import.meta.dirname, '../../recipes/job-failure-ticket.yaml');
  const result = await run(example, { out: path.join(dir, 'out'), objects: objectDir(), user: 'nobody', command: ['sh', '-c', 'exit 4'] });
  assert.equal(result.status, 'failed');
  const [ticket] = result.actions!;
  if (!nobodyReadsZx) return assertNotReadable(ticket);
  assert.equal(ticket.status, 'ok', ticket.output_tail);
  const folder = /^ticket: (.+)$/m.exec(ticket.output_tail!)![1];
  assert.equal(path.dirname(folder), tickets);
  const md = fs.readFileSync(path.join(folder, 'ticket.md'), 'utf8');
  assert.match(md, /^# job-failure-ticket: failed \(exit 1\)$/m);
  assert.match(md, /^- the workload exited with 4/m);
  assert.match(md, /^- execs \(trace\/exec\): ok, \d+ events/m);
  assert.equal(fs.readFileSync(path.join(folder, 'report.md'), 'utf8'), fs.readFileSync(result.paths.report, 'utf8').replace(/\n\n## Actions\n[^]*$/, '\n'));
  assert.equal(fs.statSync(path.join(folder, 'ticket.md')).uid, 65534);
});
