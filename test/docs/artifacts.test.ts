/** docs/artifacts.md describes summary.json: every field its JSON Schema has is named there. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Schema {
  properties?: Record<string, Schema>;
  items?: Schema;
  definitions?: Record<string, Schema>;
}

function fieldNames(schema: Schema, out = new Set<string>()): Set<string> {
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    out.add(name);
    fieldNames(sub, out);
  }
  if (schema.items) fieldNames(schema.items, out);
  for (const sub of Object.values(schema.definitions ?? {})) fieldNames(sub, out);
  return out;
}

test('every summary.json field in schemas/summary.schema.json is described in docs/artifacts.md', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'schemas/summary.schema.json'), 'utf8')) as Schema;
  const doc = fs.readFileSync(path.join(ROOT, 'docs/artifacts.md'), 'utf8');
  const missing = [...fieldNames(schema)].filter((f) => !doc.includes(`\`${f}\``) && !doc.includes(`\`${f}[]\``));
  assert.deepEqual(missing, [], 'describe these in docs/artifacts.md, "Outputs"');
});
