/**
 * The JSON Schema validators of recipes and of each gadget's params.
 *
 * From the TypeScript (tsx, tests) they are compiled with ajv on first use.
 * The CLI bundle does not contain this file: scripts/build-cli.mjs replaces it
 * with ajv's standalone code generated at build time (same exports), because
 * compiling the recipe schema at start-up cost more than the whole kernel side
 * of a run (bench/startup.ts). Keep the exports and the ajv options in step
 * with scripts/build-cli.mjs (AJV_OPTIONS).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import recipeSchema from '../../schemas/recipe.schema.json' with { type: 'json' };
import { modes, type Mode } from '../steps/modes/index.ts';

/** Shared with scripts/build-cli.mjs: the generated code must report errors the same way. */
export const AJV_OPTIONS = { allErrors: true, strict: false, verbose: true } as const;

let ajv: Ajv | undefined;
const compiled = new Map<object, ValidateFunction>();

function compile(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    ajv ??= new Ajv(AJV_OPTIONS);
    compiled.set(schema, (v = ajv.compile(schema)));
  }
  return v;
}

/** The recipe schema with every mode's step keys (src/steps/modes): a new mode's options need no edit here. */
export function recipeSchemaWithModes(): object {
  const merged = structuredClone(recipeSchema) as { definitions: { step: { properties: Record<string, unknown> } } };
  for (const m of Object.values(modes) as Mode<unknown>[]) Object.assign(merged.definitions.step.properties, m.options);
  return merged;
}

let recipeSchemaMerged: object | undefined;

export function recipeValidator(): ValidateFunction {
  return compile((recipeSchemaMerged ??= recipeSchemaWithModes()));
}

/** The validator of a gadget's `params` schema (`id` names it in the bundle's precompiled table). */
export function paramValidator(_id: string, schema: object): ValidateFunction {
  return compile(schema);
}
