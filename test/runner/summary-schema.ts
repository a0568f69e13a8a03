/** summary.json against its published schema (schemas/summary.schema.json), with ajv. */
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import schema from '../../schemas/summary.schema.json' with { type: 'json' };

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, validateFormats: false });
const validate = ajv.compile(schema);

export function assertValidSummary(summary: unknown, what = 'summary.json'): void {
  assert.ok(validate(summary), `${what} does not follow schemas/summary.schema.json: ${ajv.errorsText(validate.errors)}`);
}
