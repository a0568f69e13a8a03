/**
 * Comments and docs that point at a file send the reader to it: each path
 * they name must exist in the checkout, and none may name a file outside it
 * (a developer's machine, a design note that is not in the repository).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCANNED = ['src', 'bpf', 'scripts', 'bench', 'docs', 'README.md'];
const TEXT = /\.(ts|mjs|c|h|md)$|^setup$|^Makefile$/;
// what bench scripts write, and what the build makes
const GENERATED = /^(bench\/results|build|out)\//;
const PATH = /(?<![\w/<.-])(src|tests?|docs|bench|bpf|scripts|recipes|schemas)\/[\w./-]+\.(ts|md|mjs|c|h|yaml|json)\b/g;

function files(rel: string): string[] {
  const abs = path.join(ROOT, rel);
  if (!fs.statSync(abs).isDirectory()) return [rel];
  return fs
    .readdirSync(abs)
    .filter((n) => n !== 'node_modules' && !n.startsWith('.'))
    .flatMap((n) => files(path.join(rel, n)));
}

test('every repository path a comment or a doc names exists', () => {
  const missing: string[] = [];
  for (const file of SCANNED.flatMap(files).filter((f) => TEXT.test(path.basename(f)))) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(PATH)) {
      if (GENERATED.test(m[0]) || fs.existsSync(path.join(ROOT, m[0]))) continue;
      const line = text.slice(0, m.index).split('\n').length;
      missing.push(`${file}:${line}: ${m[0]}`);
    }
  }
  assert.deepEqual(missing, [], 'files named but not in the checkout: fix the reference or the name');
});

test('no comment or doc sends the reader outside the checkout (DESIGN.md, /work/…)', () => {
  const outside: string[] = [];
  for (const file of [...SCANNED, 'test'].flatMap(files).filter((f) => TEXT.test(path.basename(f)))) {
    const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
    lines.forEach((l, i) => {
      // this file names them to look for them
      if (file !== 'test/docs/references.test.ts' && /\bDESIGN\.md\b|\/work\/|\/home\/\w/.test(l)) outside.push(`${file}:${i + 1}: ${l.trim()}`);
    });
  }
  assert.deepEqual(outside, []);
});
