/** The small shared helpers: one copy each, so one test each. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { editDistance } from '../../src/util/edit-distance.ts';
import { mkdirs } from '../../src/util/mkdirs.ts';
import { wallTime } from '../../src/util/wall-time.ts';

test('editDistance: insertions, deletions and substitutions, each costing one', () => {
  assert.equal(editDistance('', ''), 0);
  assert.equal(editDistance('pid', 'pid'), 0);
  assert.equal(editDistance('pidd', 'pid'), 1);
  assert.equal(editDistance('comm', 'cmd'), 2);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('kitten', 'sitting'), editDistance('sitting', 'kitten'));
});

test('wallTime: RFC 3339 with nine fraction digits, zero-padded, as the codecs write timestamps', () => {
  assert.equal(wallTime(0n), '1970-01-01T00:00:00.000000000Z');
  assert.equal(wallTime(1_764_806_400_000_000_007n), '2025-12-04T00:00:00.000000007Z');
  assert.equal(wallTime(1_764_806_400_999_999_999n), '2025-12-04T00:00:00.999999999Z');
});

test('mkdirs: makes every missing level with the mode asked, accepts what exists, and reports the real errno', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-mkdirs-'));
  try {
    const deep = path.join(root, 'a', 'b', 'c');
    const umask = process.umask(0);
    try {
      mkdirs(deep, 0o755);
    } finally {
      process.umask(umask);
    }
    assert.equal(fs.statSync(path.join(root, 'a')).mode & 0o777, 0o755);
    assert.ok(fs.statSync(deep).isDirectory());
    mkdirs(deep);
    fs.writeFileSync(path.join(root, 'file'), '');
    assert.throws(() => mkdirs(path.join(root, 'file', 'x')), { code: 'ENOTDIR' });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
