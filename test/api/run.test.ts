/**
 * The library API's run(), replay() and validate() against the real kernel: a recipe run
 * returns what summary.json holds plus the files' paths; a bad recipe, options that cannot
 * work and an abort are typed errors; the process's signals are left alone. (Could not
 * trace, as a user who cannot load programs: test/api/package.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { InterruptedError, OptionError, OutDirError, RecipeError, ReplayError, replay, run, validate, type RunProgress } from '../../src/api/index.ts';
import type { Recipe } from '../../src/runner/recipe.ts';
import { bpfFds, kernelSkip, objectDir } from '../helpers/kernel.ts';
import { newBpfFds } from '../helpers/leaks.ts';
import { readJson, readNdjsonFile, tempDir, writeRecipe } from '../runner/cli-helpers.ts';

const skip = kernelSkip();

/** A small recipe as an object: a workload that executes /bin/echo with a token only this run has. */
function echoRecipe(token: string): Recipe {
  return {
    name: 'api-echo',
    run: `/bin/echo ${token} > /dev/null`,
    steps: [{ id: 'execs', gadget: 'trace/exec', transform: '$[comm = "echo"]', outputs: ['execs.ndjson', 'execs.csv'] }],
    assertions: [{ name: 'echo ran', expr: `"${token}" in steps.execs.args` }],
  };
}

test('run() returns the summary as summary.json holds it, plus the paths of every file', { skip }, async () => {
  const out = tempDir('gadget-run-api-');
  const token = `api-token-${process.pid}`;
  const phases: RunProgress['phase'][] = [];
  const result = await run(echoRecipe(token), { out, objects: objectDir(), onProgress: (p) => phases.push(p.phase), progressIntervalMs: 20 });
  assert.equal(result.status, 'passed', result.reasons.join('; '));
  const { paths, ...summary } = result;
  assert.deepEqual(readJson(paths.summary), summary, 'the result is summary.json plus paths');
  assert.equal(paths.out, path.resolve(out));
  assert.equal(paths.report, path.join(out, 'report.md'));
  assert.ok(fs.existsSync(paths.html), 'report.html');
  assert.equal(paths.raw, path.join(out, 'raw'));
  assert.deepEqual(paths.steps, { execs: [path.join(out, 'execs.ndjson'), path.join(out, 'execs.csv')] });
  const execs = readNdjsonFile(paths.steps.execs[0]);
  assert.deepEqual(execs.map((e) => [e.comm, e.args, e.ret]), [['echo', ['/bin/echo', token], 0]]);
  assert.deepEqual(result.steps.map((s) => [s.id, s.status]), [['execs', 'ok']]);
  assert.ok(result.steps[0].events >= 1);
  assert.equal(phases[0], 'attached');
  assert.equal(phases.at(-1), 'captured');
  assert.match(fs.readFileSync(paths.report, 'utf8'), /^# api-echo: passed/);
});

test('a failed verdict resolves (it is a result, not an error); replay() judges the same raw/ again', { skip }, async () => {
  const out = tempDir('gadget-run-api-');
  const recipe = { ...echoRecipe(`api-fail-${process.pid}`), assertions: [{ name: 'never', expr: '$count(steps.execs) = 0' }] };
  const result = await run(recipe, { out, objects: objectDir() });
  assert.equal(result.status, 'failed');
  assert.deepEqual(result.assertions.map((a) => [a.name, a.status]), [['never', 'failed']]);
  // the same record with an assertion that holds: no kernel, a new verdict
  const again = tempDir('gadget-run-api-replay-');
  const replayed = await replay({ ...recipe, assertions: [{ name: 'once', expr: '$count(steps.execs) = 1' }] }, { from: out, out: again });
  assert.equal(replayed.status, 'passed', replayed.reasons.join('; '));
  assert.equal(replayed.replayed_from, out);
  assert.equal(replayed.paths.raw, path.join(out, 'raw'));
  assert.deepEqual(readNdjsonFile(replayed.paths.steps.execs[0]), readNdjsonFile(result.paths.steps.execs[0]));
  await assert.rejects(replay(recipe, { from: again + '/nothing' }), ReplayError);
});

test('a bad recipe rejects with RecipeError: each problem has its file, line, column and JSON path; nothing ran', async () => {
  const dir = tempDir('gadget-run-api-');
  const file = writeRecipe(dir, 'bad.yaml', `name: bad
steps:
  - id: execs
    gadget: trace/exec
    duration: 1s
    filter: pidd==1
`);
  const out = path.join(dir, 'out');
  const err = await run(file, { out }).then(
    () => assert.fail('resolved'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RecipeError);
  assert.equal(err.problems.length, 1);
  const [p] = err.problems;
  assert.deepEqual({ file: p.file, line: p.line, col: p.col, path: p.path }, { file, line: 6, col: 13, path: 'steps[0].filter' });
  assert.match(p.message, /^unknown field "pidd" \(did you mean pid\? known: timestamp, pid,/);
  assert.equal(p.where, `${file}:6:13`);
  assert.equal(fs.existsSync(out), false, 'nothing was written');
  // validate() gives the same problems instead of throwing
  const v = validate(file);
  assert.equal(v.ok, false);
  assert.deepEqual(v.problems, err.problems);
  assert.deepEqual(validate('recipes/quickstart.yaml').ok, true);
  // a recipe object's problems have a JSON path and no line: no file was written by anyone
  const o = validate({ name: 'o', steps: [{ id: 's', gadget: 'trace/exec', duration: 1, filter: 'pidd==1' }] });
  assert.deepEqual(o.problems.map((q) => [q.where, q.path, q.line]), [['<recipe object>', 'steps[0].filter', undefined]]);
});

test('options that cannot work are typed errors before anything runs', async () => {
  const dir = tempDir('gadget-run-api-');
  const notDir = writeRecipe(dir, 'file', '');
  await assert.rejects(run(echoRecipe('x'), { out: notDir }), (e: unknown) => e instanceof OutDirError && /exists and is not a folder/.test(e.message));
  await assert.rejects(run(echoRecipe('x'), { out: dir, maxDuration: 'soon' }), (e: unknown) => e instanceof OptionError && e.option === 'maxDuration');
  await assert.rejects(run(echoRecipe('x'), { out: dir, user: `no-such-user-${process.pid}` }), (e: unknown) => e instanceof OptionError && e.option === 'user');
});

test('aborting a run: InterruptedError, what was captured is judged and written, and the process signals are left alone', { skip }, async () => {
  const out = tempDir('gadget-run-api-');
  const token = `api-abort-${process.pid}`;
  const abort = new AbortController();
  const sigint = process.listenerCount('SIGINT');
  let listenersWhileRunning = -1;
  const recipe: Recipe = {
    name: 'api-abort',
    duration: '5m',
    steps: [{ id: 'execs', gadget: 'trace/exec', filter: 'comm==echo', outputs: ['execs.ndjson'] }],
  };
  let spawned = false;
  const onProgress = (p: RunProgress) => {
    if (p.phase === 'attached') {
      listenersWhileRunning = process.listenerCount('SIGINT');
      execFileSync('/bin/echo', [token], { stdio: 'ignore' });
      spawned = true;
    }
    // stop once the event is in: the run was going to watch for five minutes
    if (spawned && p.steps[0].events > 0) abort.abort();
  };
  const started = Date.now();
  const err = await run(recipe, { out, objects: objectDir(), signal: abort.signal, onProgress, progressIntervalMs: 20 }).then(
    () => assert.fail('resolved'),
    (e: unknown) => e,
  );
  assert.ok(Date.now() - started < 60_000);
  assert.ok(err instanceof InterruptedError, String(err));
  assert.equal(err.signal, 'SIGINT');
  assert.equal(err.result.status, 'interrupted');
  assert.equal(listenersWhileRunning, sigint, 'the library installs no signal handler');
  const written = readJson(err.result.paths.summary);
  assert.equal(written.status, 'interrupted');
  assert.equal(written.steps[0].ended_by, 'signal');
  const mine = readNdjsonFile(err.result.paths.steps.execs[0]).filter((e) => e.args[1] === token);
  assert.deepEqual(mine.map((e) => e.args), [['/bin/echo', token]], 'the events before the abort are in the artifacts');
});

test('a full disk while capturing: run() resolves with an error naming ENOSPC; the workload is killed and every kernel object closed, the process lives on', { skip, timeout: 60_000 }, async (t) => {
  const dir = tempDir('gadget-run-api-');
  const out = path.join(dir, 'small');
  fs.mkdirSync(out);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', out]);
  t.after(() => execFileSync('umount', [out]));
  const before = bpfFds();
  const started = Date.now();
  // ~60k opens, a few MiB of events: far more than 256 KiB; then it would sleep on
  const result = await run(
    { name: 'full', run: 'i=0; while [ $i -lt 60000 ]; do : < /dev/null; i=$((i+1)); done; sleep 60', steps: [{ id: 'opens', gadget: 'trace/open', outputs: ['opens.ndjson'] }] },
    { out, objects: objectDir() },
  );
  assert.ok(Date.now() - started < 40_000, 'the workload did not sleep its 60 s');
  assert.equal(result.status, 'error');
  assert.match(result.error!, /ENOSPC.*free space there or give --out on a larger one/);
  assert.equal(result.steps[0].status, 'failed');
  assert.equal(result.workload?.exitCode, 137, 'killed');
  assert.equal(readJson(result.paths.summary).status, 'error');
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith('.capture')), [], 'the spool went (it also made room for the summary)');
  assert.deepEqual(newBpfFds(before), [], 'every link, program and map closed');
});
