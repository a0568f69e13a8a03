/**
 * A profile against its baseline (`baseline: {file: X.folded}` on a
 * profile/cpu step): --update-baseline writes this run's folded stacks; a
 * later run reports which functions' share of the samples grew and shrank and
 * writes a differential flame graph, without failing the run. Real captures:
 * a C busy loop first, a shell loop next, so the loop's function drops to 0%.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseFolded } from '../../src/runner/flamegraph.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { gadgets } from '../../src/steps/index.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { tempDir } from '../helpers/session.ts';
import { runCli } from './cli-helpers.ts';

const RECIPE = `name: profile-baseline
steps:
  - id: cpu
    gadget: profile/cpu
    params: { frequency: 99 }
    baseline: { file: cpu.baseline.folded }
`;

test('profile/cpu against a .folded baseline: the loop\'s function shrank to 0%, others grew, a differential flame graph, the run passes', { skip: kernelSkip(gadgets['profile/cpu']) }, async (t) => {
  const dir = tempDir(t);
  fs.chmodSync(dir, 0o755);
  const bin = compileFixture(t, 'hot_loop', ['-g', '-fno-omit-frame-pointer']);
  fs.chmodSync(path.dirname(bin), 0o755);
  const recipe = path.join(dir, 'r.yaml');
  fs.writeFileSync(recipe, RECIPE);

  const first = await runCli(['run', recipe, '--out', path.join(dir, 'one'), '--update-baseline', '--', bin, '1']);
  assert.equal(first.code, 0, first.stderr);
  const base = parseFolded(fs.readFileSync(path.join(dir, 'cpu.baseline.folded'), 'utf8'));
  const inLoop = base.filter((s) => s.stack.split(';').includes('gadget_hot_loop')).reduce((n, s) => n + s.count, 0);
  const all = base.reduce((n, s) => n + s.count, 0);
  assert.ok(inLoop / all > 0.3, `the baseline is mostly the loop: ${inLoop} of ${all}`);

  const second = await runCli(['run', recipe, '--out', path.join(dir, 'two'), '--', 'sh', '-c', 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done']);
  assert.equal(second.code, 0, second.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'two/summary.json'), 'utf8')) as Summary;
  const b = summary.steps[0].baseline!;
  assert.equal(b.file, 'cpu.baseline.folded');
  assert.deepEqual([b.added, b.removed, b.updated], [[], [], undefined]);
  const p = b.profile!;
  assert.equal(p.baselineSamples, all);
  assert.ok(p.samples > 0);
  const loop = p.shrank.find((f) => f.function === 'gadget_hot_loop');
  assert.ok(loop && loop.before === Math.round((inLoop / all) * 10000) / 100 && loop.after === 0, JSON.stringify(p.shrank));
  assert.ok(p.grew.length > 0 && p.grew.every((f) => f.after > f.before));
  assert.equal(p.diff, 'cpu.diff.svg');
  assert.ok(summary.steps[0].artifacts.includes('cpu.diff.svg'));
  const svg = fs.readFileSync(path.join(dir, 'two/cpu.diff.svg'), 'utf8');
  assert.match(svg, /points against the baseline\)<\/title>/);
  // the shell's frames grew from nothing: red
  assert.match(svg, /fill="rgb\(255,\d+,\d+\)"/);
  assert.match(fs.readFileSync(path.join(dir, 'two/report.md'), 'utf8'), /↓ gadget_hot_loop: [\d.]+% → 0% of samples/);
  // the baseline was not rewritten without --update-baseline
  assert.equal(parseFolded(fs.readFileSync(path.join(dir, 'cpu.baseline.folded'), 'utf8')).reduce((n, s) => n + s.count, 0), all);
});

test('parseFolded reads what foldedText writes and names a bad line', () => {
  assert.deepEqual(parseFolded('a;b 3\n\nc 1\n'), [{ stack: 'a;b', count: 3 }, { stack: 'c', count: 1 }]);
  assert.throws(() => parseFolded('a;b 3\nnot a line\n', 'x.folded'), /^Error: x\.folded:2: not a folded stack line/);
  assert.throws(() => parseFolded('a 0\n', 'x.folded'), /x\.folded:1:/);
});
