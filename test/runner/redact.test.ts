/**
 * Secrets stay out of reports: a traced command line full of credentials, run for real,
 * leaves none of them in any file of --out (raw/ included), the JUnit file, the GitHub
 * step summary, or what the CLI prints.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compileRedactor, MASK } from '../../src/runner/redact.ts';
import { notRoot, readJson, runCli, tempDir, writeRecipe } from './cli-helpers.ts';
import { assertValidSummary } from './summary-schema.ts';

const GH = `ghp_${'A1b2C3d4E5'.repeat(4)}`;
const SECRETS = ['hunter2', 'abc123tok', 'tok_SECRET_12345678', 'pw123', GH, 'AKIAABCDEFGHIJKLMNOP', 'mysecret', 'sekrit-42'];

test('the default patterns and a flag followed by its value', () => {
  const r = compileRedactor(['sekrit-[0-9]+']);
  assert.equal(r.string('mysql --password=hunter2 -u me'), `mysql --password=${MASK} -u me`);
  assert.equal(r.string('curl https://me:pw123@host/x?token=abc123tok&page=2'), `curl https://me:${MASK}@host/x?token=${MASK}&page=2`);
  assert.equal(r.string('Authorization: Bearer tok_SECRET_12345678'), `Authorization: Bearer ${MASK}`);
  assert.equal(r.string(`push ${GH} AKIAABCDEFGHIJKLMNOP sekrit-42`), `push ${MASK} ${MASK} ${MASK}`);
  assert.deepEqual(r.value({ args: ['app', '--token', 'mysecret', 'mkdir', '-p', 'dir'] }), { args: ['app', '--token', MASK, 'mkdir', '-p', 'dir'] });
  // unaffected lines keep their bytes and are never parsed
  const line = '{"pid":1,"path":"/etc/hosts"}';
  assert.equal(r.suspect(line), false);
  assert.equal(r.line(line), line);
  assert.throws(() => compileRedactor(['(unclosed']), /redact pattern "\(unclosed"/);
});

test('a bad redact pattern is a recipe error with its place', async () => {
  const dir = tempDir();
  const file = writeRecipe(dir, 'r.yaml', 'name: r\nrun: "true"\nredact: ["ok", "(unclosed"]\nsteps:\n  - { id: a, gadget: trace/exec }\n');
  const r = await runCli(['validate', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /r\.yaml:3:\d+ redact\[1\]: redact pattern "\(unclosed"/);
});

test('no secret of a traced command line reaches any artifact, raw/ included, nor the CI outputs', { skip: notRoot }, async () => {
  const dir = tempDir();
  const stepSummary = path.join(dir, 'step-summary.md');
  const recipe = writeRecipe(dir, 'leaky.yaml', `name: leaky
run: |
  /bin/echo --password=hunter2 "https://ci:pw123@example.invalid/x?token=abc123tok" "Authorization: Bearer tok_SECRET_12345678" ${GH} AKIAABCDEFGHIJKLMNOP --token mysecret sekrit-42 > /dev/null
redact: ['sekrit-[0-9]+']
junit: junit.xml
steps:
  - { id: execs, gadget: trace/exec, outputs: [execs.ndjson, execs.csv, execs.json] }
assertions:
  - name: nothing echoes
    expr: '$count(steps.execs[comm = "echo"]) = 0'
`);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', recipe, '--out', out], { env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: stepSummary } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const summary = readJson(path.join(out, 'summary.json'));
  assertValidSummary(summary);
  // the event is there, masked: the evidence shows it
  const echo = summary.assertions[0].evidence.events[0];
  assert.deepEqual(echo.args, ['/bin/echo', `--password=${MASK}`, `https://ci:${MASK}@example.invalid/x?token=${MASK}`, `Authorization: Bearer ${MASK}`, MASK, MASK, '--token', MASK, MASK]);
  const files = fs.readdirSync(out, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath ?? d.path, d.name));
  assert.ok(files.some((f) => f.endsWith(path.join('raw', 'execs.ndjson'))) && files.some((f) => f.endsWith('junit.xml')), files.join(' '));
  const texts: [string, string][] = [...files.map((f): [string, string] => [f, fs.readFileSync(f, 'utf8')]), ['stdout', r.stdout], ['stderr', r.stderr], ['step summary', fs.readFileSync(stepSummary, 'utf8')]];
  for (const [where, text] of texts) for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} in ${where}`);
});
