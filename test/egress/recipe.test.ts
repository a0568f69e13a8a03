/** The recipe's egress block: what it plans, and where its problems are reported. No root. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';

function problems(text: string): string[] {
  try {
    parseRecipe(text, 'r.yaml');
  } catch (err) {
    if (err instanceof RecipeError) return err.problems.map((p) => `${p.where} ${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

test('block mode: the step egress with every entry spelled out, and the assertion that nothing was refused', () => {
  const loaded = parseRecipe('name: e\nrun: "true"\negress:\n  mode: block\n  allow: [registry.npmjs.org, "10.0.0.0/8:443/tcp"]\n  allow_resolver: false\n', 'r.yaml');
  const step = loaded.steps.find((s) => s.spec.id === 'egress')!;
  assert.equal(step.def.id, 'audit/egress');
  assert.deepEqual(step.spec.params, {
    mode: 'block', allow: ['registry.npmjs.org', '10.0.0.0/8:443/tcp', '127.0.0.0/8', '::1/128'], allow_loopback: false, allow_resolver: false, defaults_from: 2,
  });
  assert.deepEqual(loaded.recipe.assertions, [{ name: 'egress: nothing refused', expr: '$count(steps.egress[verdict = "refused"]) = 0' }]);
  const audit = parseRecipe('name: e\nrun: "true"\negress:\n  mode: audit\n  allow_loopback: false\n  allow_resolver: false\n', 'r.yaml');
  assert.equal(audit.recipe.assertions, undefined);
  assert.deepEqual(audit.steps[0].spec.params?.allow, []);
});

test('problems name the file, line, column and path', () => {
  assert.deepEqual(problems('name: e\negress:\n  mode: block\n'), ['r.yaml:3:3 egress: egress is enforced on the workload\'s cgroup: give the recipe a run command']);
  const bad = problems('name: e\nrun: "true"\negress:\n  mode: block\n  allow:\n    - example.com\n    - "10.0.0.0/40"\n');
  assert.equal(bad.length, 1);
  assert.match(bad[0], /^r\.yaml:7:7 egress\.allow\[1\]: "10\.0\.0\.0\/40": .*CIDR/);
  assert.match(problems('name: e\nrun: "true"\negress:\n  mode: deny\n')[0], /egress\.mode/);
  assert.match(problems('name: e\nrun: "true"\negress: {mode: block}\nsteps:\n  - id: egress\n    gadget: trace/exec\n')[0], /already named "egress"/);
  const five = ['a:1', 'a:2', 'a:3', 'a:4', 'a:5'].map((e) => `"${e}"`).join(', ');
  assert.match(problems(`name: e\nrun: "true"\negress:\n  mode: block\n  allow: [${five}]\n`)[0], /at most 4 ports/);
});

test('a baseline: its destinations are allowed, every attempt is reported and keyed by destination', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egress-recipe-'));
  try {
    fs.writeFileSync(path.join(dir, 'egress.json'), JSON.stringify(['allowed.test:8080/tcp', '10.99.0.7:8080/tcp']));
    const file = path.join(dir, 'r.yaml');
    const loaded = parseRecipe('name: e\nrun: "true"\negress:\n  mode: audit\n  baseline: egress.json\n  allow_loopback: false\n  allow_resolver: false\n', file);
    const spec = loaded.steps[0].spec;
    assert.deepEqual(spec.params, { mode: 'audit', allow: ['allowed.test:8080/tcp', '10.99.0.7:8080/tcp'], allow_loopback: false, allow_resolver: false, report_allowed: true, defaults_from: 2 });
    assert.deepEqual(spec.baseline, { file: 'egress.json', key: 'destination' });
    fs.writeFileSync(path.join(dir, 'egress.json'), '["not an entry!"]');
    assert.throws(() => parseRecipe('name: e\nrun: "true"\negress:\n  mode: audit\n  baseline: egress.json\n', file), /egress\.baseline: "not an entry!"/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('the egress step follows the workload and every container it starts, whatever the recipe\'s containers: watches', () => {
  for (const containers of ['', 'containers: { workload: false }\n', 'containers: { image: busybox }\n']) {
    const loaded = parseRecipe(`name: e\nrun: "true"\n${containers}egress:\n  mode: block\nsteps:\n  - { id: exec, gadget: trace/exec }\n`, 'r.yaml');
    assert.deepEqual(loaded.steps.find((s) => s.spec.id === 'egress')!.containers, { workload: true }, containers);
  }
  const own = problems('name: e\nrun: "true"\nsteps:\n  - id: out\n    gadget: audit/egress\n    params: { mode: block }\n    containers: { workload: false }\n');
  assert.equal(own.length, 1, own.join('\n'));
  assert.match(own[0], /steps\[0\]\.containers: audit\/egress acts on the workload and every container it starts/);
});
