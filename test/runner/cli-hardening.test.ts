/**
 * The CLI under hostile recipes and a hostile environment: one-line errors
 * with exit 2, never a stack trace, never a write outside --out.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { notRoot, readJson, runCli, tempDir, writeRecipe } from './cli-helpers.ts';

const STACK = /\n\s+at .+:\d+:\d+/;

function assertCleanError(r: { code: number | null; stderr: string }, re: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, STACK, `${what}: no stack trace`);
  assert.match(r.stderr, re, what);
}

test('an output name with a newline cannot write outside --out', async () => {
  const dir = tempDir();
  const target = `/etc/EVIL-${process.pid}.csv`;
  const recipe = writeRecipe(dir, 'nl.yaml', `name: nl
steps:
  - id: a
    gadget: snapshot/process
    outputs: ["y\\n/../../../../../../../..${target}"]
`);
  try {
    const v = await runCli(['validate', recipe]);
    assertCleanError(v, /nl\.yaml:5:15 steps\[0\]\.outputs\[0\]: "y\\n\/\.\.\/.*" is not an output name/, 'validate');
    const r = await runCli(['run', recipe, '--out', path.join(dir, 'out')]);
    assertCleanError(r, /is not an output name/, 'run');
    assert.ok(!fs.existsSync(target), `${target} was created`);
    assert.ok(!fs.existsSync(path.join(dir, 'out')), 'nothing ran, so --out was not even made');
  } finally {
    fs.rmSync(target, { force: true });
  }
});

test('a bad --out is a one-line error with exit 2', async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'ok.yaml', 'name: ok\nsteps:\n  - id: a\n    gadget: snapshot/process\n');
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const dangling = path.join(dir, 'dangling');
  fs.symlinkSync(path.join(dir, 'nowhere'), dangling);
  for (const [out, re] of [[file, /exists and is not a folder/], [dangling, /symbolic link to something that does not exist/], [path.join(file, 'sub'), /ENOTDIR/]] as const) {
    assertCleanError(await runCli(['run', recipe, '--out', out]), new RegExp(`--out .*: .*${re.source}.* — choose a folder you can write with --out DIR`), out);
  }
});

test('an --out on a read-only file system is a one-line error with exit 2', { skip: process.getuid?.() !== 0 ? 'needs root to mount a read-only tmpfs' : false }, async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'ok.yaml', 'name: ok\nsteps:\n  - id: a\n    gadget: snapshot/process\n');
  const ro = path.join(dir, 'ro');
  fs.mkdirSync(ro);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'gadget-run-test-ro', ro]);
  try {
    assertCleanError(await runCli(['run', recipe, '--out', path.join(ro, 'out')]), /cannot write there: read-only file system \(EROFS\)/, 'read-only --out');
    // the default out/<name> in a read-only working directory
    assertCleanError(await runCli(['run', recipe], { cwd: ro }), /--out out\/ok: cannot write there: read-only file system \(EROFS\)/, 'read-only cwd');
  } finally {
    execFileSync('umount', [ro]);
  }
});

test('hostile YAML: undefined aliases, billion laughs, 50 MB of garbage — bounded, one-line, exit 2', async () => {
  const dir = tempDir();
  const alias = writeRecipe(dir, 'alias.yaml', 'name: *nope\nsteps: []\n');
  assertCleanError(await runCli(['validate', alias]), /alias\.yaml:1:1 YAML: Unresolved alias/, 'undefined alias');
  const laughs = writeRecipe(dir, 'laughs.yaml', ['a: &a [x,x,x,x,x,x,x,x,x]', ...'bcdefgh'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`), 'name: x', 'steps: []'].join('\n'));
  assertCleanError(await runCli(['run', laughs]), /YAML: Excessive alias count/, 'billion laughs');
  const big = path.join(dir, 'big.yaml');
  fs.writeFileSync(big, 'name: [\n' + '{a: [b, {c: '.repeat(50 * 1024 * 1024 / 12));
  const r = await runCli(['validate', big]);
  assertCleanError(r, /big\.yaml the recipe is larger than 1MiB/, '50 MB of broken YAML');
  const noise = path.join(dir, 'noise.yaml');
  fs.writeFileSync(noise, Buffer.from(Array.from({ length: 900_000 }, (_, i) => (i * 2654435761) >>> 24)));
  const n = await runCli(['validate', noise]);
  assert.equal(n.code, 2, n.stderr);
  assert.doesNotMatch(n.stderr, STACK);
  assert.ok(n.stderr.length < 20_000, `stderr of ${n.stderr.length} bytes for random bytes`);
});

test('a step that reaches its max_bytes is truncated and fails the run, with what it kept', { skip: notRoot }, async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'cap.yaml', `name: cap
run: for i in $(seq 1 400); do cat /dev/null; done
steps:
  - id: opens
    gadget: trace/open
    filter: path==/dev/null
    max_bytes: 16KiB
    outputs: [opens.ndjson]
`);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', recipe, '--out', out]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const summary = readJson(path.join(out, 'summary.json'));
  assert.equal(summary.status, 'failed');
  const [step] = summary.steps;
  assert.equal(step.status, 'truncated');
  assert.match(step.reason, /reached its max_bytes \(16KiB\): \d+ later events were not written/);
  const kept = fs.readFileSync(path.join(out, 'opens.ndjson'));
  assert.ok(kept.length <= 16 * 1024 && kept.length > 0, `${kept.length} bytes kept`);
  assert.equal(kept.toString().split('\n').filter(Boolean).length, step.events);
  assert.equal(step.events + step.truncated, 400, 'every open is either kept or counted');
});
