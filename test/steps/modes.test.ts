/** The mode registry: each mode's step keys reach the recipe schema and checks through the registry alone. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';
import { gadgets } from '../../src/steps/index.ts';
import { checkSupport, modeOptionKeys, modes, type Mode } from '../../src/steps/modes/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';

const byMode = (name: string) => Object.values(gadgets as Record<string, GadgetDefinition>).find((g) => g.mode === name);

test('every mode key is accepted on a step of its mode and refused, naming the mode, on another', () => {
  const keys = modeOptionKeys();
  assert.ok(keys.size > 0);
  const stream = byMode('stream')!;
  const snapshot = byMode('snapshot')!;
  assert.deepEqual(keys.get('buffer'), ['stream', 'packet']);
  assert.deepEqual(keys.get('delay'), ['snapshot']);
  const ok = parseRecipe(`name: x\nduration: 1s\nsteps:\n  - { id: a, gadget: ${stream.id}, buffer: 64KiB }\n  - { id: b, gadget: ${snapshot.id}, delay: 10ms }\n`, 'r.yaml');
  assert.deepEqual(ok.steps.map((s) => s.options), [{ buffer: '64KiB' }, { delay: '10ms' }]);
  assert.equal(ok.steps[0].ringBytes, 64 * 1024);
  assert.equal(ok.steps[1].ringBytes, 0);
  assert.throws(
    () => parseRecipe(`name: x\nduration: 1s\nsteps:\n  - { id: b, gadget: ${snapshot.id}, buffer: 64KiB }\n`, 'r.yaml'),
    (err: unknown) => err instanceof RecipeError && err.problems[0].message === `buffer is for stream and packet gadgets; ${snapshot.id} is a snapshot gadget`,
  );
});

test('packet gadgets run in a mode of their own, registered under its name, with the stream\'s ring buffer key', () => {
  for (const [name, m] of Object.entries(modes)) assert.equal(m.name, name);
  const packet = byMode('packet')!;
  assert.ok(packet, 'a packet gadget is registered');
  const ok = parseRecipe(`name: x\nduration: 1s\nsteps:\n  - { id: a, gadget: ${packet.id}, buffer: 64KiB }\n`, 'r.yaml');
  assert.equal(ok.steps[0].ringBytes, 64 * 1024);
  assert.throws(
    () => parseRecipe(`name: x\nduration: 1s\nsteps:\n  - { id: a, gadget: ${packet.id}, buffer: 12KiB }\n`, 'r.yaml'),
    (err: unknown) => err instanceof RecipeError && /steps\[0\]\.buffer: the ring buffer size must be a power of two/.test(err.message),
  );
});

test('a mode key the schema does not know is refused by the schema, listing the mode keys among the known', () => {
  assert.throws(
    () => parseRecipe(`name: x\nduration: 1s\nsteps:\n  - { id: a, gadget: trace/exec, buffr: 1MiB }\n`, 'r.yaml'),
    (err: unknown) => err instanceof RecipeError && /unknown property "buffr" \(known: .*buffer.*delay/.test(err.problems[0].message),
  );
});

test('every mode plans its defaults from no keys, and a gadget of an unregistered mode says so', () => {
  for (const m of Object.values(modes) as Mode<unknown>[]) {
    const def = byMode(m.name);
    if (!def) continue;
    const problems: string[] = [];
    m.plan({}, def, (k, msg) => problems.push(`${k}: ${msg}`));
    assert.deepEqual(problems, [], m.name);
  }
  const fake = { ...byMode('stream')!, id: 'x/y', mode: 'advise' as never };
  assert.deepEqual(checkSupport(fake).why, { kind: 'mode', mode: 'advise' });
});
