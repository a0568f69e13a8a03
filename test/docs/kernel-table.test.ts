/**
 * README.md's and docs/kernels.md's kernel table say what test/vm/expected.json records, which
 * the kernel matrix (test/vm/matrix.test.ts) checks against each kernel: the table is the
 * matrix's results, not a summary typed by hand.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { byVersion, kernelTable, readRecord, REPO, section, TABLE_MARKS } from '../vm/results.ts';

for (const doc of ['README.md', 'docs/kernels.md']) {
  test(`${doc}'s kernel table is the one test/vm/expected.json makes (node scripts/vm-table.mjs writes it)`, () => {
    const text = fs.readFileSync(path.join(REPO, doc), 'utf8');
    const got = section(text, TABLE_MARKS);
    assert.ok(got !== undefined, `${doc} has the marks ${TABLE_MARKS.join(' … ')}`);
    assert.equal(got, kernelTable(), `${doc}'s table differs from test/vm/expected.json: run node scripts/vm-table.mjs`);
  });
}

test('the table has a column per kernel of the record, 6.1, 6.12 and 6.18 among them, and a row per gadget', () => {
  const record = readRecord();
  const [head, , ...rows] = kernelTable(record).split('\n');
  const names = Object.keys(record.kernels).sort(byVersion);
  for (const k of ['6.1', '6.12', '6.18']) assert.ok(names.includes(k), `test/vm/expected.json records ${k}`);
  assert.equal(head.split(' | ').length, 2 + names.length);
  for (const [kernel, k] of Object.entries(record.kernels)) {
    for (const id of Object.keys(k.gadgets)) assert.ok(rows.some((r) => r.startsWith(`| ${id} |`)), `${kernel}: a row for ${id}`);
  }
});
