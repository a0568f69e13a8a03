import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';
import recipeSchema from '../../schemas/recipe.schema.json' with { type: 'json' };
import { planOrThrow } from '../../src/steps/modes/index.ts';
import { snapshotMode } from '../../src/steps/modes/snapshot.ts';

function problems(text: string): string[] {
  try {
    parseRecipe(text, 'r.yaml');
  } catch (err) {
    assert.ok(err instanceof RecipeError, `expected a RecipeError, got ${err}`);
    return err.problems.map((p) => `${p.where} ${p.path}: ${p.message}`);
  }
  assert.fail('the recipe was accepted');
}

test('a valid recipe plans every step with its filter, duration and defaults', () => {
  const { recipe, steps } = parseRecipe(
    `name: ok
duration: 2s
steps:
  - id: execs
    gadget: trace/exec
    filter: comm!=sh,uid==0
    outputs: [execs.ndjson, execs.csv]
  - id: opens
    gadget: trace/open
    duration: 500ms
    buffer: 1MiB
  - id: procs
    gadget: snapshot/process
    delay: 1.5s
    params: { threads: true }
assertions:
  - name: a
    expr: '$count(steps.execs) >= 0'
`,
    'ok.yaml',
  );
  assert.equal(recipe.name, 'ok');
  assert.deepEqual(steps.map((s) => s.durationMs), [2000, 500, 2000]);
  assert.deepEqual(steps[0].filter.map((p) => `${p.field}${p.op}${p.value}`), ['comm!=sh', 'uid==0']);
  assert.equal(steps[1].ringBytes, 1024 * 1024);
  assert.equal(steps[0].ringBytes, 16 * 1024 * 1024);
  assert.deepEqual(steps[2].options, { delay: '1.5s' });
  assert.deepEqual(planOrThrow(snapshotMode, steps[2].def, steps[2].options), { delayMs: 1500 });
  assert.equal(steps[2].def.id, 'snapshot/process');
});

test('an unknown filter field points at the field inside the filter, with the known ones', () => {
  const text = `name: x
steps:
  - id: execs
    gadget: trace/exec
    duration: 1s
  - id: opens
    gadget: trace/open
    duration: 1s
    filter: path~^/etc,pidd==3
`;
  assert.deepEqual(problems(text), [
    'r.yaml:9:24 steps[1].filter: unknown field "pidd" (did you mean pid? known: timestamp, pid, tid, uid, gid, comm, path, flags, flag_names, mode, ret, fd, err, err_name, mntns_id, cgroup_id)',
  ]);
});

test('a quoted filter counts its quote when pointing at the column', () => {
  const [p] = problems(`name: x
run: "true"
steps:
  - id: a
    gadget: trace/exec
    filter: "comm==a,uid>=x"
`);
  assert.equal(p, 'r.yaml:6:22 steps[0].filter: uid is a number; "x" is not');
});

test('schema errors name the line, column and JSON path, all at once', () => {
  const got = problems(`name: x
stepz: []
steps:
  - id: a
    gadget: trace/exec
    duration: 3x
    outputs: [../a.csv, b.txt]
`);
  assert.deepEqual(got, [
    // the known list is the schema's: every key a change adds shows up without editing this test
    `r.yaml:2:1 stepz: unknown property "stepz" (known: ${Object.keys(recipeSchema.properties).join(', ')})`,
    'r.yaml:6:15 steps[0].duration: "3x" is not a duration: write a number of seconds (at most 2073600, 24 days) or 500ms, 30s, 1m30s, 5m, 1h, 2d',
    'r.yaml:7:15 steps[0].outputs[0]: "../a.csv" is not an output name: write a plain file name inside --out (letters, digits, _ . -; no folders, no control characters) ending in .ndjson, .json, .csv, .yaml, .folded or .svg',
    'r.yaml:7:25 steps[0].outputs[1]: "b.txt" is not an output name: write a plain file name inside --out (letters, digits, _ . -; no folders, no control characters) ending in .ndjson, .json, .csv, .yaml, .folded or .svg',
  ]);
});

test('missing required properties point at the object that lacks them', () => {
  assert.deepEqual(problems(`name: x
steps:
  - gadget: trace/exec
`), ['r.yaml:3:5 steps[0]: missing required property "id"']);
});

test('unknown gadgets list the known ones', () => {
  const [p] = problems(`name: x
run: "true"
steps:
  - id: a
    gadget: trace/exek
`);
  assert.match(p, /^r\.yaml:5:13 steps\[0\]\.gadget: unknown gadget "trace\/exek" \(known: trace\/exec, trace\/open, /);
});

test('params are checked against the gadget, unknown ones point at their key', () => {
  assert.deepEqual(problems(`name: x
steps:
  - id: a
    gadget: snapshot/process
    params: {thread: true}
`), ['r.yaml:5:14 steps[0].params.thread: unknown parameter "thread" of snapshot/process (known: threads)']);
  assert.deepEqual(problems(`name: x
steps:
  - id: a
    gadget: trace/open
    duration: 1s
    params: {x: 1}
`), ['r.yaml:6:13 steps[0].params: trace/open takes no params']);
  // a value outside an enum: the message lists the values allowed
  assert.deepEqual(problems(`name: x
run: "true"
steps:
  - id: a
    gadget: advise/seccomp-profile
    params: {document: spo}
`), ['r.yaml:6:24 steps[0].params.document: must be one of "oci", "SeccompProfile"']);
});

test('JSONata syntax errors in transforms and assertions are caught before running', () => {
  assert.deepEqual(problems(`name: x
steps:
  - id: a
    gadget: snapshot/process
    transform: '$[ret = '
assertions:
  - name: n
    expr: 'steps.a.'
`), [
    'r.yaml:5:16 steps[0].transform: JSONata: Expected "]" before end of expression (at character 8)',
    'r.yaml:8:11 assertions[0].expr: JSONata: Unexpected end of expression (at character 8)',
  ]);
});

test('a stream step needs a duration or a workload', () => {
  assert.deepEqual(problems(`name: x
steps:
  - id: a
    gadget: trace/exec
`), ['r.yaml:3:5 steps[0]: trace/exec runs until stopped (stream mode): give the step a duration (e.g. duration: 30s) or the recipe a run command']);
});

test('duplicate ids and outputs, misplaced delay and buffer are refused', () => {
  assert.deepEqual(problems(`name: x
run: "true"
steps:
  - id: a
    gadget: trace/exec
    delay: 1s
    outputs: [a.csv]
  - id: a
    gadget: snapshot/process
    buffer: 3MiB
    outputs: [a.csv, summary.json]
`), [
    'r.yaml:6:12 steps[0].delay: delay is for snapshot gadgets; trace/exec is a stream gadget',
    'r.yaml:10:13 steps[1].buffer: buffer is for stream and packet gadgets; snapshot/process is a snapshot gadget',
    'r.yaml:8:9 steps[1].id: duplicate step id "a" (ids name results and must be unique)',
    'r.yaml:11:15 steps[1].outputs[0]: "a.csv" is already written by step a; give each output its own name',
    'r.yaml:11:22 steps[1].outputs[1]: "summary.json" is already written by gadget-run itself; give each output its own name',
  ]);
});

test('YAML syntax errors and duplicate keys say where', () => {
  const [p] = problems('name: x\nsteps: [\n');
  assert.match(p, /^r\.yaml:\d+:\d+ : YAML: /);
  const [d] = problems('name: x\nname: y\nsteps: []\n');
  assert.match(d, /^r\.yaml:2:1 : YAML: Map keys must be unique/);
});

test('a container selection: network policies are its documents over the whole node; a node-wide gadget refuses one of its own', () => {
  const { steps } = parseRecipe(
    `name: sel
duration: 1s
containers: {namespace: shop}
steps:
  - id: np
    gadget: advise/network-policy
  - id: execs
    gadget: trace/exec
  - id: blk
    gadget: profile/block-io
`,
    'sel.yaml',
  );
  const by = Object.fromEntries(steps.map((s) => [s.spec.id, s]));
  assert.deepEqual([by.np.containers, by.np.documents], [undefined, { namespace: 'shop' }]);
  assert.deepEqual([by.execs.containers, by.execs.documents], [{ selection: { namespace: 'shop' }, workload: false }, undefined]);
  // the recipe's selection leaves a node-wide step as it is
  assert.deepEqual([by.blk.containers, by.blk.documents], [undefined, undefined]);
  assert.deepEqual(problems(`name: sel
duration: 1s
steps:
  - id: blk
    gadget: profile/block-io
    containers: {pod: web-0}
`), ['r.yaml:6:17 steps[0].containers: profile/block-io is node-wide and cannot be narrowed to containers; remove the selection from this step']);
});

test("an output in a gadget's own format is for that gadget only: .strace is traceloop's", () => {
  assert.deepEqual(problems(`name: r
duration: 1s
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.ndjson, execs.strace]
`), ['r.yaml:6:29 steps[0].outputs[1]: .strace is not a format trace/exec writes (write .ndjson, .json, .csv, .yaml, .folded, .svg, .pb.gz)']);
  const { steps } = parseRecipe('name: r\nduration: 1s\nsteps:\n  - { id: calls, gadget: traceloop, outputs: [calls.strace, calls.ndjson] }\n', 'r.yaml');
  assert.deepEqual(steps[0].spec.outputs, ['calls.strace', 'calls.ndjson']);
});
