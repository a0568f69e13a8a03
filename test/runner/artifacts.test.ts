/**
 * Artifacts are written fully or not at all, never through a planted symlink, and
 * never outside --out. The full-disk cases mount a 64 KiB tmpfs of their own (root).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ArtifactError, artifactPath, writeOutput, writeTextAtomic } from '../../src/runner/artifacts.ts';
import { evaluate } from '../../src/runner/evaluate.ts';
import type { Recipe } from '../../src/runner/recipe.ts';
import { readJson, tempDir } from './cli-helpers.ts';
import { captured } from './evaluate-helpers.ts';

const notRoot = process.getuid?.() !== 0 ? 'needs root to mount a tmpfs' : false;

/** A 64 KiB tmpfs at a fresh folder, unmounted (and removed) when `use` is done. */
async function withSmallTmpfs(use: (dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir('gadget-run-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=1777', 'tmpfs', dir]);
  try {
    await use(dir);
  } finally {
    execFileSync('umount', [dir]);
    fs.rmdirSync(dir);
  }
}

test('a full disk: the write fails in one line naming the file, nothing short is renamed into place', { skip: notRoot }, async () => {
  await withSmallTmpfs(async (dir) => {
    const file = path.join(dir, 'procs.json');
    fs.writeFileSync(file, '{"old": true}\n');
    const big = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ pid: i })));
    assert.ok(big.length > 64 * 1024);
    await assert.rejects(writeTextAtomic(file, big), (err: Error) => {
      assert.ok(err instanceof ArtifactError);
      assert.equal(err.message, `cannot write ${file}: no space left on device (ENOSPC); free some space or choose another --out`);
      return true;
    });
    assert.deepEqual(readJson(file), { old: true }, 'the earlier file is untouched');
    assert.deepEqual(fs.readdirSync(dir), ['procs.json'], 'no temp left behind');
  });
});

test('a full disk during evaluation fails that output, keeps the raw events and still writes the summary', { skip: notRoot }, async () => {
  await withSmallTmpfs(async (dir) => {
    // ~20 KiB of events: the raw file fits, its pretty JSON and CSV on top of it do not all fit
    const events = Array.from({ length: 300 }, (_, i) => ({ pid: i, comm: 'x'.repeat(40), path: `/tmp/file-${i}` }));
    const recipe: Recipe = { name: 'full', steps: [{ id: 'a', gadget: 'test/stream', outputs: ['a.json', 'a.ndjson', 'a.csv', 'b.json'] }] };
    captured(dir, { a: events }, ['pid', 'comm', 'path']);
    const evaluation = await evaluate(recipe, dir);
    const step = evaluation.steps[0];
    assert.equal(step.status, 'failed');
    assert.match(step.reason!, /^output \S+ failed: cannot write \S+: no space left on device \(ENOSPC\)/);
    for (const name of ['a.json', 'a.ndjson', 'a.csv', 'b.json']) {
      if (step.artifacts.includes(name)) continue;
      assert.ok(!fs.existsSync(path.join(dir, name)), `${name} failed, so it is not there at all`);
    }
    assert.equal(fs.readFileSync(path.join(dir, 'raw/a.ndjson'), 'utf8').split('\n').length, 301, 'the raw record stays whole');
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temp or staging folder left');
  });
});

test('temp files: a symlink planted at every predictable temp name is never written through', async () => {
  const dir = tempDir();
  const victim = path.join(tempDir(), 'victim');
  fs.writeFileSync(victim, 'precious\n');
  // the old scheme: .<name>.<pid>.tmp; plant for a range of pids around ours too
  for (let pid = process.pid - 50; pid <= process.pid + 50; pid++) fs.symlinkSync(victim, path.join(dir, `.summary.json.${pid}.tmp`));
  await writeTextAtomic(path.join(dir, 'summary.json'), '{"fresh": true}\n');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  assert.deepEqual(readJson(path.join(dir, 'summary.json')), { fresh: true });
  assert.ok(fs.lstatSync(path.join(dir, '.summary.json.' + process.pid + '.tmp')).isSymbolicLink(), 'the planted link was left alone');
});

test('a symlink at the final name is replaced, not followed', async () => {
  const dir = tempDir();
  const victim = path.join(tempDir(), 'victim');
  fs.writeFileSync(victim, 'precious\n');
  fs.symlinkSync(victim, path.join(dir, 'a.json'));
  fs.symlinkSync(victim, path.join(dir, 'a.ndjson'));
  const raw = path.join(tempDir(), 'raw.ndjson');
  fs.writeFileSync(raw, '{"pid":1}\n{"pid":2}\n');
  await writeOutput(artifactPath(dir, 'a.json'), { file: raw, shape: 'list' });
  await writeOutput(artifactPath(dir, 'a.ndjson'), { file: raw, shape: 'list' });
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  assert.ok(fs.lstatSync(path.join(dir, 'a.json')).isFile());
  assert.deepEqual(readJson(path.join(dir, 'a.json')), [{ pid: 1 }, { pid: 2 }]);
  assert.equal(fs.readFileSync(path.join(dir, 'a.ndjson'), 'utf8'), '{"pid":1}\n{"pid":2}\n');
});

test('artifact names: plain file names in --out only, even through a symlinked --out', () => {
  const real = tempDir();
  const link = path.join(tempDir(), 'out-link');
  fs.symlinkSync(real, link);
  assert.equal(artifactPath(link, 'a.csv'), path.join(fs.realpathSync(real), 'a.csv'));
  for (const bad of ['../a.csv', 'sub/a.csv', '/etc/passwd', 'a\nb.csv', 'a\\b.csv', '..', '.', '', 'x\u0000.csv', 'y\n/../../../../etc/EVIL.csv']) {
    assert.throws(() => artifactPath(link, bad), (err: Error) => err instanceof ArtifactError && /is not a plain file name/.test(err.message), JSON.stringify(bad));
  }
});

test('evaluate refuses an output that escapes --out, even from a recipe that skipped validation', async () => {
  const root = tempDir();
  const dir = path.join(root, 'a/b/c/d/out');
  fs.mkdirSync(dir, { recursive: true });
  captured(dir, { a: [{ pid: 1 }] }, ['pid']);
  const evil = 'y\n/../../../../etc/EVIL.csv';
  const recipe: Recipe = { name: 'evil', steps: [{ id: 'a', gadget: 'test/stream', outputs: [evil, 'ok.csv'] }] };
  const { steps } = await evaluate(recipe, dir);
  assert.equal(steps[0].status, 'failed');
  assert.equal(steps[0].reason, `output ${evil} failed: output ${JSON.stringify(evil)} is not a plain file name: outputs go straight into --out (no folders, no control characters)`);
  assert.deepEqual(steps[0].artifacts, ['ok.csv'], 'the other output is still written');
  assert.ok(!fs.existsSync('/etc/EVIL.csv'));
  const everything = fs.readdirSync(root, { recursive: true }).map(String);
  assert.deepEqual(everything.filter((f) => f.includes('EVIL') || f.includes('y\n')), []);
});

test("a gadget's own output format is written by its definition's writer, and is no other gadget's format", async () => {
  const dir = tempDir();
  const row = { timestamp: '2026-01-02T03:04:05.123456789Z', pid: 7, tid: 7, comm: 'cat', syscall: 'close', args: [3], ret: 0, err_name: '' };
  captured(dir, { calls: [row], execs: [{ pid: 1 }] }, ['pid'], { calls: { gadget: 'traceloop' } });
  const recipe: Recipe = {
    name: 'own',
    steps: [
      { id: 'calls', gadget: 'traceloop', outputs: ['calls.strace'] },
      { id: 'execs', gadget: 'test/stream', outputs: ['execs.strace', 'execs.ndjson'] },
    ],
  };
  const { steps } = await evaluate(recipe, dir);
  assert.equal(fs.readFileSync(path.join(dir, 'calls.strace'), 'utf8'), '03:04:05.123456 7 cat: close(3) = 0\n');
  assert.equal(steps[0].status, 'ok');
  // fail closed: not an empty file that looks like "no syscalls"
  assert.equal(steps[1].status, 'failed');
  assert.match(steps[1].reason ?? '', /output execs\.strace failed: .*unknown format \(write \.ndjson, \.json, \.csv, \.yaml, \.folded \/ \.svg \/ \.pb\.gz \(pprof\) for rows with stack and count\)/);
  assert.ok(!fs.existsSync(path.join(dir, 'execs.strace')));
  assert.deepEqual(steps[1].artifacts, ['execs.ndjson']);
});
