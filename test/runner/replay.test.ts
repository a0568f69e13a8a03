/**
 * Re-run without tracing: `gadget-run replay RECIPE --from DIR` over what a real run
 * captured gives the same artifacts byte for byte and the same summary but for timing,
 * for every recipe in recipes/, and it needs neither root nor a kernel.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { notRoot, readJson, ROOT, runCli, tempDir, writeRecipe } from './cli-helpers.ts';
import { assertValidSummary } from './summary-schema.ts';
import { readableInstall, sharedTempDir } from '../helpers/install.ts';

const RECIPES = path.join(ROOT, 'recipes');

/** What may differ between a run and its replay: how long each took, and that it is a replay. */
function comparable(summary: Record<string, unknown>) {
  const { durationMs: _d, replayed_from: _r, ...rest } = summary;
  return rest;
}

const tookLine = (md: string) => md.replace(/, took \S+\.$/m, ', took T.');

test('replay gives the artifacts and the summary of the run, for every recipe in recipes/', { skip: notRoot }, async () => {
  const recipes = fs.readdirSync(RECIPES).filter((f) => f.endsWith('.yaml'));
  for (const file of recipes) {
    const recipe = path.join(RECIPES, file);
    const out = tempDir();
    const r = await runCli(['run', recipe, '--out', out, '--max-duration', '2s']);
    assert.equal(r.code, 0, `${file}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    const original = readJson(path.join(out, 'summary.json'));
    const again = tempDir();
    const replayed = await runCli(['replay', recipe, '--from', out, '--out', again]);
    assert.equal(replayed.code, 0, `${file} replay: exit ${replayed.code}\n${replayed.stdout}${replayed.stderr}`);
    const summary = readJson(path.join(again, 'summary.json'));
    assertValidSummary(original, `${file} summary.json`);
    assertValidSummary(summary, `${file} replayed summary.json`);
    assert.equal(summary.replayed_from, out);
    assert.deepEqual(comparable(summary), comparable(original), file);
    const artifacts = original.steps.flatMap((s: { artifacts: string[] }) => s.artifacts);
    for (const a of artifacts) assert.ok(fs.readFileSync(path.join(again, a)).equals(fs.readFileSync(path.join(out, a))), `${file}: ${a} is byte-identical`);
    assert.equal(tookLine(fs.readFileSync(path.join(again, 'report.md'), 'utf8')), tookLine(fs.readFileSync(path.join(out, 'report.md'), 'utf8')), `${file}: report.md`);
  }
});

test('replay needs no root, and an edited assertion takes effect without tracing again', { skip: notRoot ? 'needs root for the run it replays' : false }, async (t) => {
  // nobody runs a world-readable copy of the CLI in a folder it can reach: the checkout may
  // live where only root can read (a clone in `mktemp -d`, under /root)
  const bin = readableInstall(t);
  const dir = sharedTempDir(t, 'gadget-run-replay-');
  const tag = `replay${process.pid}`;
  const text = (expr: string) => `name: rp\nrun: /bin/echo ${tag}\nsteps:\n  - { id: execs, gadget: trace/exec, outputs: [execs.csv] }\nassertions:\n  - { name: check, expr: '${expr}' }\n`;
  const recipe = writeRecipe(dir, 'rp.yaml', text(`"${tag}" in steps.execs.args`));
  fs.chmodSync(recipe, 0o644);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', recipe, '--out', out]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  fs.chmodSync(out, 0o755);
  // the new assertion fails: replay says so, as nobody, from the record alone
  fs.writeFileSync(recipe, text(`$count(steps.execs[args[1] = "${tag}"]) = 0`));
  const again = path.join(dir, 'again');
  fs.mkdirSync(again, { mode: 0o777 });
  fs.chmodSync(again, 0o777);
  let stdout = '';
  assert.throws(
    () => execFileSync(process.execPath, [bin, 'replay', recipe, '--from', out, '--out', again], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: dir } }),
    (err: { status: number; stdout: string }) => ((stdout = err.stdout), err.status === 1),
  );
  assert.match(stdout, new RegExp(`FAIL check — expected true, got false: \\$count\\(steps\\.execs\\[args\\[1\\] = "${tag}"\\]\\) was 1`));
  assert.equal(readJson(path.join(again, 'summary.json')).assertions[0].evidence.events[0].comm, 'echo');
});

test('replay from a folder with no captured run is a command-line error', async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'r.yaml', 'name: r\nrun: "true"\nsteps:\n  - { id: a, gadget: trace/exec }\n');
  const r = await runCli(['replay', recipe, '--from', dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--from .*: no captured run there \(raw\/run\.json is missing\)/);
  const usage = await runCli(['replay', recipe]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /replay needs --from DIR/);
});
