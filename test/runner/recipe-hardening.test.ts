/**
 * Recipes are untrusted input (a pull request's), run by root: what they may
 * name, how long they may ask for, and how much they may take.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_RECIPE_BYTES, parseRecipe, RecipeError } from '../../src/runner/recipe.ts';
import { MAX_DURATION_MS, parseDuration } from '../../src/steps/duration.ts';

function problems(text: string, limits?: Parameters<typeof parseRecipe>[3]): string[] {
  try {
    parseRecipe(text, 'r.yaml', undefined, limits);
  } catch (err) {
    assert.ok(err instanceof RecipeError, `expected a RecipeError, got ${(err as Error).stack}`);
    return err.problems.map((p) => `${p.where} ${p.path}: ${p.message}`);
  }
  assert.fail('the recipe was accepted');
}

const snapshotWithOutputs = (outputs: string) => `name: o
steps:
  - id: a
    gadget: snapshot/process
    outputs: ${outputs}
`;

test('an output is a plain file name: no separators, control characters, dot names or reserved names', () => {
  const bad = [
    '"y\\n/../../../../../../../../etc/EVIL.csv"', // the newline once hid the ".." from the pattern
    '"./summary.json"', '"sub/a.csv"', '"/tmp/a.csv"', '"..\\\\a.csv"', '".hidden.csv"', '"a\\tb.csv"',
    '"a\\u0000.csv"', '"a.csv\\n"', '"réport.csv"', '"summary.json"', '"report.md"', '"a.txt"',
  ];
  for (const name of bad) {
    const got = problems(snapshotWithOutputs(`[${name}]`));
    assert.equal(got.length, 1, `${name}: ${got.join('\n')}`);
    assert.match(got[0], /^r\.yaml:5:\d+ steps\[0\]\.outputs\[0\]: /, name);
  }
  assert.match(problems(snapshotWithOutputs('["y\\n/../../etc/EVIL.csv"]'))[0], /"y\\n\/\.\.\/\.\.\/etc\/EVIL\.csv" is not an output name: write a plain file name/);
  // plain names pass
  parseRecipe(snapshotWithOutputs('[procs.csv, Procs-2.json, p_3.v1.ndjson]'), 'r.yaml');
});

test('two steps may not write one file', () => {
  const got = problems(`name: o
steps:
  - id: a
    gadget: snapshot/process
    outputs: [p.csv]
  - id: b
    gadget: snapshot/process
    outputs: [p.csv]
`);
  assert.deepEqual(got, ['r.yaml:8:15 steps[1].outputs[0]: "p.csv" is already written by step a; give each output its own name']);
});

test('durations are more than 0 and at most 24 days; validate names the range and echoes the value', () => {
  const recipe = (key: string, value: string) => `name: d\n${key === 'timeout' ? 'run: "true"\n' : ''}${key}: ${value}\nsteps:\n  - id: a\n    gadget: trace/exec\n`;
  for (const [key, value] of [['duration', '1e99'], ['duration', '.inf'], ['duration', '2147484s'], ['duration', '0s'], ['duration', '0'], ['duration', '25d'], ['timeout', '1e99'], ['timeout', '.nan'], ['duration', '-1']] as const) {
    const got = problems(recipe(key, value));
    assert.ok(got.length >= 1, `${key}: ${value}`);
    assert.match(got.join('\n'), new RegExp(`r\\.yaml:\\d+:\\d+ ${key}: .*(out of range|not a duration)`), `${key}: ${value}: ${got.join('\n')}`);
    assert.match(got.join('\n'), /24 days/, `${key}: ${value} names the range`);
  }
  const ok = parseRecipe(recipe('duration', '1m30s'), 'r.yaml');
  assert.equal(ok.steps[0].durationMs, 90_000);
  assert.equal(parseRecipe(recipe('duration', '24d'), 'r.yaml').steps[0].durationMs, MAX_DURATION_MS);
  assert.ok(MAX_DURATION_MS <= 2 ** 31 - 1, 'every duration fits a Node timer');
  assert.throws(() => parseDuration('1m30'), /not a duration/);
  assert.throws(() => parseDuration(''), /not a duration/);
});

test('YAML attacks are recipe errors with a place, not stack traces', () => {
  assert.match(problems('name: *nope\nsteps: []\n')[0], /^r\.yaml:1:1 : YAML: Unresolved alias/);
  const laughs = ['a: &a [x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]', 'f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]'].join('\n');
  assert.match(problems(laughs)[0], /YAML: Excessive alias count/);
});

test('a huge recipe is refused before parsing, and garbage gives bounded messages', () => {
  const huge = 'name: x\n' + '#'.repeat(MAX_RECIPE_BYTES);
  assert.match(problems(huge)[0], /larger than 1MiB/);
  // random bytes: many problems, but a bounded report
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const garbage = Buffer.from(Array.from({ length: 200_000 }, () => Math.floor(rnd() * 256))).toString('latin1');
  try {
    parseRecipe(garbage, 'r.yaml');
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof RecipeError);
    assert.ok(err.message.length < 10_000, `report of ${err.message.length} characters`);
  }
});

test('a recipe cannot take more ring memory or output bytes than the command line allows', () => {
  const steps = Array.from({ length: 20 }, (_, i) => `  - id: s${i}\n    gadget: trace/open\n    buffer: 64MiB\n`).join('');
  const got = problems(`name: big\nduration: 1s\nsteps:\n${steps}`);
  assert.deepEqual(got, ["r.yaml:4:3 steps: the steps' ring buffers take 1280MiB together; the limit is 256MiB (give steps a smaller buffer, or raise the limit with --limit-ring)"]);
  parseRecipe(`name: big\nduration: 1s\nsteps:\n${steps}`, 'r.yaml', undefined, { ringBytes: 2 * 1024 ** 3, outputBytes: 8 * 1024 ** 3 });
  const writes = problems(`name: w\nduration: 1s\nmax_bytes: 999999MiB\nsteps:\n  - id: a\n    gadget: trace/open\n`);
  assert.match(writes[0], /may write 999999MiB together \(max_bytes\); the limit is 4GiB/);
  assert.equal(parseRecipe('name: w\nduration: 1s\nsteps:\n  - id: a\n    gadget: trace/open\n    max_bytes: 1MiB\n', 'r.yaml').steps[0].maxBytes, 1024 * 1024);
});

test('a problem is one line even when the bad value holds line breaks or NULs (found by the fuzz test)', () => {
  try {
    parseRecipe('name: x\nduration: 1s\nsteps:\n  - id: a\n    gadget: trace/open\n    filter: "\\n\\u0000"\n', 'r.yaml');
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof RecipeError);
    assert.equal(err.message, 'r.yaml:6:14 steps[0].filter: "\\n\\u0000" does not start with a field name (write field==value)');
  }
});
