/**
 * validate resolves what assertions point at: a misspelled step id, a field the result
 * does not have, a function JSONata does not know — each was a silent pass before —, with
 * the place inside the expression and the names that do exist.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import jsonata from 'jsonata';
import { JSONATA_FUNCTIONS } from '../../src/runner/expr-check.ts';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';
import { ROOT, runCli, tempDir, writeRecipe } from './cli-helpers.ts';

function problems(text: string): string[] {
  try {
    parseRecipe(text, 'r.yaml');
  } catch (err) {
    if (err instanceof RecipeError) return err.problems.map((p) => `${p.where} ${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

const STEPS = `name: r
run: "true"
steps:
  - id: execs
    gadget: trace/exec
    transform: '$[ret = 0].{"pid": pid, "cmd": $join(args, " ")}'
  - id: opens
    gadget: trace/open
assertions:
`;

test("the README's old example: a transform that drops comm makes comm an unknown field", () => {
  assert.deepEqual(problems(`${STEPS}  - name: nothing downloads\n    expr: '$count(steps.execs[comm in ["curl","wget"]]) = 0'\n`), [
    'r.yaml:11:31 assertions[0].expr: unknown field "comm" of step execs\'s records (fields: pid, cmd)',
  ]);
});

test('a misspelled step id, an unknown field of a gadget, of stats, and in a block scalar: each with its place', () => {
  const text = `${STEPS}  - name: a
    expr: '$count(steps.exec) = 0'
  - name: b
    expr: |
      $count(steps.opens[command = "x"]) = 0
        and stats.opens.lsot = 0
  - name: c
    expr: 'steps.opens.path'
`;
  // the gadget's fields, then those evaluation joins in from the containers (cgroup_id)
  const opensFields = 'timestamp, pid, tid, uid, gid, comm, path, flags, flag_names, mode, ret, fd, err, err_name, mntns_id, cgroup_id, container_id, container_name, runtime, container_image, node, namespace, pod, container, labels, owner';
  assert.deepEqual(problems(text), [
    'r.yaml:11:25 assertions[0].expr: unknown step "exec" in steps.exec (steps: execs, opens)',
    `r.yaml:14:26 assertions[1].expr: unknown field "command" of step opens's records (fields: ${opensFields})`,
    'r.yaml:15:25 assertions[1].expr: unknown field "lsot" of stats.opens (fields: status, events, lost)',
  ]);
});

test('unknown JSONata functions are errors at validate; functions the expression binds are not', () => {
  const [countt] = problems(`${STEPS}  - name: a\n    expr: '$countt(steps.opens) = 0'\n`);
  assert.match(countt, /^r\.yaml:11:12 assertions\[0\]\.expr: unknown function \$countt \(did you mean \$count\?\)/);
  assert.deepEqual(problems(`${STEPS}  - name: a\n    expr: '($twice := function($x) { $x * 2 }; $twice($count(steps.opens)) >= 0)'\n`), []);
  const [transform] = problems(STEPS.replace('$join(args', '$joinn(args') + '  - { name: a, expr: "true" }\n');
  assert.match(transform, /^r\.yaml:6:\d+ steps\[0\]\.transform: unknown function \$joinn \(did you mean \$join\?\)/);
});

test('the shape of a transform that ends in an object constructor is known; others are left to the run', () => {
  assert.deepEqual(problems(`${STEPS}  - { name: a, expr: '$count(steps.execs[cmd = "x" and pid > 0]) = 0' }\n`), []);
  const unknownShape = STEPS.replace(`'$[ret = 0].{"pid": pid, "cmd": $join(args, " ")}'`, `'$map($, function($e) { $e })'`);
  assert.deepEqual(problems(`${unknownShape}  - { name: a, expr: '$count(steps.execs[anything = 1]) = 0' }\n`), []);
});

test('every name in the built-in list is a JSONata function, and a name that is not one is not', async () => {
  // JSONata wraps its built-ins as {_jsonata_function, implementation, signature}
  for (const name of JSONATA_FUNCTIONS) assert.equal((await jsonata(`$${name}`).evaluate({}))?._jsonata_function, true, `$${name}`);
  assert.equal(await jsonata('$countt').evaluate({}), undefined);
});

test('validate on the command line reports them all and exits 2', async () => {
  const dir = tempDir();
  const file = writeRecipe(dir, 'r.yaml', `${STEPS}  - { name: a, expr: '$countt(steps.exec) = 0' }\n`);
  const r = await runCli(['validate', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown function \$countt/);
  assert.match(r.stderr, /unknown step "exec"/);
});

test("the README's recipe example validates: its assertions point at fields its transform keeps", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const example = /## Recipes\n\n```yaml\n([^]*?)\n```/.exec(readme)?.[1];
  assert.ok(example, 'the first yaml block under ## Recipes');
  assert.deepEqual(problems(example), []);
});

test("an advise step's records are its documents: their fields are known, the connection fields are not (filters still take those)", () => {
  const text = `name: r
run: "true"
steps:
  - id: policy
    gadget: advise/network-policy
    filter: dport!=53
assertions:
  - name: a
    expr: '$count(steps.policy.spec.egress) >= 0'
  - name: b
    expr: '$count(steps.policy[dport = 1]) = 0'
`;
  assert.deepEqual(problems(text), [
    `r.yaml:11:32 assertions[1].expr: unknown field "dport" of step policy's records (fields: apiVersion, kind, metadata, spec)`,
  ]);
});
