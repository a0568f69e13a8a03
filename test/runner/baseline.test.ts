/**
 * Baseline diff, run for real with trace/exec: new keys fail the run and are printed,
 * removed keys are reported, unchanged passes, and only --update-baseline writes the
 * file. The file stays inside the recipe's folder: "..", absolute paths and symlinks out
 * are refused.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { diffKeys } from '../../src/runner/baseline.ts';
import { notRoot, readJson, runCli, tempDir, writeRecipe } from './cli-helpers.ts';
import { assertValidSummary } from './summary-schema.ts';

const recipe = (commands: string[], file = 'execs.baseline.json') => `name: bl
run: |
${commands.map((c) => `  ${c} > /dev/null`).join('\n')}
steps:
  - id: execs
    gadget: trace/exec
    filter: ret==0
    baseline: { file: ${JSON.stringify(file)}, key: 'args[0]' }
`;

async function run(dir: string, text: string, ...args: string[]) {
  const file = writeRecipe(dir, 'bl.yaml', text);
  const out = path.join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const r = await runCli(['run', file, '--out', out, ...args], { env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: path.join(dir, 'summary.md') } });
  const summary = readJson(path.join(out, 'summary.json'));
  assertValidSummary(summary);
  return { r, summary, report: fs.readFileSync(path.join(out, 'report.md'), 'utf8') };
}

test('new keys fail and are printed, removed ones are reported, unchanged passes; only --update-baseline writes', { skip: notRoot }, async () => {
  const dir = tempDir();
  const baseline = path.join(dir, 'execs.baseline.json');
  // no baseline yet: every key is new, and nothing is written without the flag
  const first = await run(dir, recipe(['/bin/true', '/bin/ls /']));
  assert.equal(first.r.code, 1, first.r.stdout + first.r.stderr);
  assert.deepEqual(first.summary.steps[0].baseline, { file: 'execs.baseline.json', added: ['/bin/ls', '/bin/sh', '/bin/true'], removed: [] });
  assert.ok(!fs.existsSync(baseline), 'no --update-baseline, no file');

  const update = await run(dir, recipe(['/bin/true', '/bin/ls /']), '--update-baseline');
  assert.equal(update.r.code, 0, update.r.stdout + update.r.stderr);
  assert.equal(fs.readFileSync(baseline, 'utf8'), '[\n  "/bin/ls",\n  "/bin/sh",\n  "/bin/true"\n]\n');
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'written atomically: no temp file left');

  const unchanged = await run(dir, recipe(['/bin/true', '/bin/ls /']));
  assert.equal(unchanged.r.code, 0, unchanged.r.stdout + unchanged.r.stderr);
  assert.deepEqual(unchanged.summary.steps[0].baseline, { file: 'execs.baseline.json', added: [], removed: [] });

  const added = await run(dir, recipe(['/bin/true', '/bin/ls /', '/bin/echo hi']));
  assert.equal(added.r.code, 1);
  assert.deepEqual(added.summary.steps[0].baseline.added, ['/bin/echo']);
  assert.match(added.summary.reasons.join('\n'), /step execs: 1 new key not in execs\.baseline\.json: \/bin\/echo/);
  assert.match(added.r.stdout, /^ {4}\+ \/bin\/echo$/m);
  assert.match(added.r.stdout, /^::error file=.*title=step execs%3A new keys not in execs\.baseline\.json::\/bin\/echo$/m);
  assert.match(added.report, /\+ \/bin\/echo/);
  assert.equal(fs.readFileSync(baseline, 'utf8'), '[\n  "/bin/ls",\n  "/bin/sh",\n  "/bin/true"\n]\n', 'the baseline is untouched');

  const removed = await run(dir, recipe(['/bin/true']));
  assert.equal(removed.r.code, 0, 'a removed key is news, not a failure');
  assert.deepEqual(removed.summary.steps[0].baseline, { file: 'execs.baseline.json', added: [], removed: ['/bin/ls'] });
  assert.match(removed.r.stdout, /^ {4}- \/bin\/ls$/m);
});

test('a baseline outside the recipe folder is refused: "..", absolute at validate, a symlink out at run time', { skip: notRoot }, async () => {
  const dir = tempDir();
  for (const [file, why] of [['../x.json', /climbs out with "\.\."/], ['/etc/x.json', /is absolute/], ['x.txt', /must end in \.json/]] as const) {
    const r = await runCli(['validate', writeRecipe(dir, 'bl.yaml', recipe(['/bin/true'], file))]);
    assert.equal(r.code, 2, file);
    assert.match(r.stderr, new RegExp(`bl\\.yaml:\\d+:\\d+ steps\\[0\\]\\.baseline\\.file: .*${why.source}`), file);
  }
  const outside = tempDir();
  fs.writeFileSync(path.join(outside, 'keys.json'), '[]\n');
  fs.symlinkSync(outside, path.join(dir, 'linked'));
  const viaDir = await run(dir, recipe(['/bin/true'], 'linked/keys.json'), '--update-baseline');
  assert.equal(viaDir.r.code, 1);
  assert.equal(viaDir.summary.steps[0].status, 'failed');
  assert.match(viaDir.summary.steps[0].reason, /resolves to .*, outside the recipe's folder/);
  fs.symlinkSync(path.join(outside, 'keys.json'), path.join(dir, 'file.json'));
  const viaFile = await run(dir, recipe(['/bin/true'], 'file.json'), '--update-baseline');
  assert.match(viaFile.summary.steps[0].reason, /outside the recipe's folder/);
  assert.equal(fs.readFileSync(path.join(outside, 'keys.json'), 'utf8'), '[]\n', 'nothing outside was written');
});

test('diffKeys: added in order, removed sorted', () => {
  assert.deepEqual(diffKeys(['a', 'c', 'd'], ['b', 'c', 'a0']), { added: ['a', 'd'], removed: ['a0', 'b'] });
});
