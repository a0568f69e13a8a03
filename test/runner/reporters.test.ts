/** The CI reporters: JUnit XML against its schema, GitHub Actions annotations that workload text cannot forge. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { escapeData, escapeProperty, fenceCommands, problemAnnotations, runAnnotations } from '../../src/cli/reporters/github.ts';
import { renderJunit, xmlSafe } from '../../src/runner/reporters/junit.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { ROOT, runCli, tempDir, writeRecipe } from './cli-helpers.ts';

const XSD = path.join(ROOT, 'test/fixtures/junit.xsd');

const RECIPE = `name: ci
run: "true"
steps:
  - id: execs
    gadget: trace/exec
  - id: opens
    gadget: trace/open
assertions:
  - name: nothing downloads
    expr: '$count(steps.execs[comm = "curl"]) = 0'
  - name: holds
    expr: 'true'
`;

function summaryWith(hostile: string): Summary {
  return {
    schema_version: 1, tool_version: '0.1.0', reasons: ['assertion "nothing downloads" failed'],
    recipe: 'ci', file: 'ci.yaml', status: 'failed', node: 'node-1', kernel: '6.18', startedAt: '2026-12-01T00:00:00.000Z', durationMs: 1500,
    workload: { command: 'npm test', exitCode: 0 },
    steps: [
      { id: 'execs', gadget: 'trace/exec', status: 'ok', events: 12, lost: 3, artifacts: ['execs.ndjson'], durationMs: 1400 },
      { id: 'opens', gadget: 'trace/open', status: 'failed', reason: `output failed: ${hostile}`, events: 0, lost: 0, artifacts: [], durationMs: 0 },
    ],
    assertions: [
      { name: 'nothing downloads', passed: false, message: `expected true, got false; first: pid 7 comm curl args ${hostile}` },
      { name: 'holds', passed: true, message: 'held' },
    ],
  };
}

const HOSTILE = '::error::x\n::add-mask::y\r%0A]]><x/>&\u0001\u001b[31m';

function validateXml(xml: string): void {
  const dir = tempDir();
  const file = path.join(dir, 'junit.xml');
  fs.writeFileSync(file, xml);
  // xmllint exits non-zero and says why when the file does not follow the schema
  execFileSync('xmllint', ['--noout', '--schema', XSD, file], { stdio: ['ignore', 'pipe', 'pipe'] });
}

test('JUnit: a testcase per step and per assertion, failures with evidence, valid against the schema whatever the text holds', () => {
  const xml = renderJunit(summaryWith(HOSTILE));
  validateXml(xml);
  assert.match(xml, /<testsuites tests="5" failures="3" errors="0" skipped="0">/);
  assert.match(xml, /<testcase classname="ci\.steps" name="execs \(trace\/exec\)" time="1\.4">\s*<failure message="3 events were lost in the kernel/);
  assert.match(xml, /name="nothing downloads">\s*<failure message="expected true, got false; first: pid 7 comm curl args ::error::x"/);
  assert.doesNotMatch(xml, /\u0001|\u001b/, 'no characters XML 1.0 cannot hold');
  assert.equal(xmlSafe('a\u0000b\u{1F600}\n'), 'a\ufffdb\u{1F600}\n');
});

test('GitHub: annotations point at the recipe line and escape what the workload wrote', () => {
  const loaded = parseRecipe(RECIPE, 'recipes/ci.yaml');
  const out = runAnnotations(summaryWith(HOSTILE), loaded);
  const lines = out.split('\n').filter(Boolean);
  assert.equal(lines.length, 3, out);
  assert.equal(lines[0], '::error file=recipes/ci.yaml,line=4,col=5,title=step execs lost events::3 events were lost in the kernel: raise the step\'s buffer or narrow its filter');
  assert.match(lines[1], /^::error file=recipes\/ci\.yaml,line=6,col=5,title=step opens failed::output failed: ::error::x%0A::add-mask::y%0D%250A/);
  assert.match(lines[2], /^::error file=recipes\/ci\.yaml,line=9,col=5,title=assertion failed%3A nothing downloads::expected true/);
  // every command is one line: nothing the workload wrote starts a line of its own
  for (const l of lines) assert.match(l, /^::(error|warning) file=/);
  assert.equal(escapeData('50%\r\n'), '50%25%0D%0A');
  assert.equal(escapeProperty('a:b,c'), 'a%3Ab%2Cc');
});

test('GitHub: fenced output turns workflow commands off with a token nobody can guess', () => {
  const a = fenceCommands('evidence ::error::x\n');
  const b = fenceCommands('evidence ::error::x\n');
  const token = /^::stop-commands::([0-9a-f]{32})\n/.exec(a)?.[1];
  assert.ok(token, a);
  assert.ok(a.endsWith(`\n::${token}::\n`));
  assert.notEqual(token, /^::stop-commands::([0-9a-f]{32})/.exec(b)?.[1]);
});

test('GitHub: recipe errors are annotations at their file:line:col', async () => {
  const dir = tempDir();
  const file = writeRecipe(dir, 'bad.yaml', 'name: b\nrun: "true"\nsteps:\n  - id: a\n    gadget: trace/exec\n    filter: pidd==1\n');
  const r = await runCli(['validate', file], { env: { GITHUB_ACTIONS: 'true' } });
  assert.equal(r.code, 2);
  assert.equal(r.stdout, `::error file=${escapeProperty(file)},line=6,col=13,title=gadget-run%3A bad recipe::steps[0].filter: unknown field "pidd" (did you mean pid? known: ${r.stdout.split('? known: ')[1]}`);
  assert.equal(problemAnnotations([{ where: 'x.yaml', path: '', message: 'm' }]), '::error file=x.yaml,title=gadget-run%3A bad recipe::m\n');
});

test('a run under GitHub Actions: fenced report, annotations, step summary, JUnit file', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const dir = tempDir();
  const file = writeRecipe(dir, 'gh.yaml', `name: gh
run: /bin/echo '::error::x' > /dev/null
junit: junit.xml
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.ndjson]
assertions:
  - name: echo never runs
    expr: '$count(steps.execs[comm = "echo"]) = 0'
`);
  const out = path.join(dir, 'out');
  const stepSummary = path.join(dir, 'step-summary.md');
  fs.writeFileSync(stepSummary, '# earlier step\n');
  const r = await runCli(['run', file, '--out', out], { env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: stepSummary } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const token = /^::stop-commands::([0-9a-f]{32})$/m.exec(r.stdout)?.[1];
  assert.ok(token, r.stdout);
  const [fenced, after] = r.stdout.split(`::${token}::\n`);
  assert.match(fenced, /FAIL echo never runs/);
  const commands = after.split('\n').filter(Boolean);
  assert.ok(commands.length >= 1);
  for (const c of commands) assert.match(c, /^::(error|warning) file=/, `unfenced output: ${c}`);
  assert.match(after, new RegExp(`::error file=${escapeProperty(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')},line=9,col=5,title=assertion failed%3A echo never runs::`));
  const md = fs.readFileSync(stepSummary, 'utf8');
  assert.match(md, /^# earlier step\n# gh: failed\n/);
  const execs = fs.readFileSync(path.join(out, 'execs.ndjson'), 'utf8');
  assert.match(execs, /"::error::x"/, 'the workload did run echo with the hostile argument');
  const xml = fs.readFileSync(path.join(out, 'junit.xml'), 'utf8');
  validateXml(xml);
  // the evidence reaches both: the hostile argument escaped in the annotation, in the JUnit failure body
  assert.match(after, /assertion failed%3A echo never runs::expected true, got false: \$count\(steps\.execs\[comm = "echo"\]\) was 1%0A\$count.* was 1%0Afirst 1 of 1 events it picked:%0A  pid \d+ ppid \d+ comm echo args \/bin\/echo ::error::x/);
  assert.match(xml, /first 1 of 1 events it picked:\n {2}pid \d+ ppid \d+ comm echo args \/bin\/echo ::error::x/);
});
