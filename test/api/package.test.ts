/**
 * `import … from 'gadget-run'` as a script or a TypeScript project outside src/ would write
 * it: through package.json's exports (self-reference from inside the package), from an .mjs
 * file; the generated declarations type it. As a user who cannot load BPF programs, the
 * same import says so with typed errors instead of exiting.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import * as api from '../../src/api/index.ts';
import { readableInstall } from '../helpers/install.ts';
import { isRoot, REPO } from '../helpers/kernel.ts';

test('index.mjs exports what src/api/index.ts exports, and package.json points at it and at the types', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  assert.deepEqual(pkg.exports['.'], { types: './build/types/api/index.d.ts', default: './index.mjs' });
  assert.equal(pkg.types, pkg.exports['.'].types);
  for (const f of ['index.mjs', 'lib', 'build/types']) assert.ok(pkg.files.includes(f), f);
  // index.mjs names the exports it passes on: the same list as the TypeScript entry
  const text = fs.readFileSync(path.join(REPO, 'index.mjs'), 'utf8');
  const listed = /export const \{([^}]*)\}/.exec(text)![1].split(',').map((s) => s.trim()).filter(Boolean);
  assert.deepEqual(listed.sort(), Object.keys(api).sort());
});

test('an .mjs file imports the package by its name and the declarations type it', async () => {
  const out = execFileSync(process.execPath, [path.join(REPO, 'test/fixtures/api-import.mjs')], { cwd: '/', encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { ok: false, path: 'steps[0].filter', gadgets: 'function', stream: 'function', error: 'function' });

  // the types: a consumer in its own project, compiled against build/types through the exports
  execFileSync(process.execPath, [path.join(REPO, 'scripts/build-types.mjs')], { stdio: 'pipe' });
  const dir = path.join(REPO, 'build/types-check');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, files: ['consumer.mts'] }));
  fs.writeFileSync(path.join(dir, 'consumer.mts'), `
import { run, stream, validate, gadgets, InterruptedError, RecipeError, type RunResult, type StreamStats } from 'gadget-run';
const result: RunResult = await run('recipe.yaml', { out: 'out', set: { a: 'b' }, signal: AbortSignal.timeout(1000), onProgress: (p) => p.steps.map((s) => s.events.toFixed()) });
const file: string = result.paths.summary;
const status: 'passed' | 'failed' | 'interrupted' | 'error' | 'could_not_trace' = result.status;
const events = stream('trace/exec', { filter: 'comm==curl' });
for await (const e of events) console.log(e.comm);
const stats: StreamStats = await events.close();
const v = validate('recipe.yaml');
if (!v.ok) v.problems.map((p) => [p.line, p.col, p.path]);
(await gadgets()).map((g) => g.supported);
try { await run('x') } catch (err) { if (err instanceof InterruptedError) err.result.paths.out; if (err instanceof RecipeError) err.problems[0].where; }
// @ts-expect-error -- an option run() does not take
await run('recipe.yaml', { outt: 'x' });
// @ts-expect-error -- stats are numbers
const wrong: string = stats.dropped;
console.log(file, status, wrong);
`);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    assert.fail(`the consumer does not compile against the package's types:\n${(err as { stdout: string }).stdout}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('as a user who cannot load BPF programs: could-not-trace is a typed error with the result, from an installed copy', { skip: !isRoot() && 'needs root to run a child as nobody' }, async (t) => {
  const bin = readableInstall(t);
  const install = path.dirname(path.dirname(bin));
  // a script beside the package's package.json, as a runbook in recipes/runbooks/ is
  const script = path.join(install, 'probe.mjs');
  fs.writeFileSync(script, `
import { run, stream, gadgets, CouldNotTraceError } from 'gadget-run';
const out = process.argv[2];
const rows = await gadgets();
let runError;
try {
  await run({ name: 'nobody', run: 'true', steps: [{ id: 'execs', gadget: 'trace/exec' }] }, { out });
} catch (err) {
  runError = { name: err.name, typed: err instanceof CouldNotTraceError, status: err.result?.status, summary: err.result?.paths.summary };
}
const s = stream('trace/exec');
let streamError;
await s.ready.catch((err) => (streamError = { name: err.name, typed: err instanceof CouldNotTraceError, message: err.message }));
console.log(JSON.stringify({ unsupported: rows.filter((g) => !g.supported).length, total: rows.length, reason: rows[0].reason, runError, streamError }));
`);
  fs.chmodSync(script, 0o644);
  const out = path.join(install, 'out');
  fs.mkdirSync(out);
  fs.chownSync(out, 65534, 65534);
  const r = JSON.parse(execFileSync(process.execPath, [script, out], { uid: 65534, gid: 65534, cwd: install, encoding: 'utf8', env: { ...process.env, HOME: install } }));
  assert.equal(r.unsupported, r.total);
  assert.match(r.reason, /needs root/);
  assert.deepEqual({ ...r.runError, summary: undefined }, { name: 'CouldNotTraceError', typed: true, status: 'could_not_trace', summary: undefined });
  assert.equal(JSON.parse(fs.readFileSync(r.runError.summary, 'utf8')).status, 'could_not_trace');
  assert.equal(r.streamError.name, 'CouldNotTraceError');
  assert.equal(r.streamError.typed, true);
  assert.match(r.streamError.message, /root|EPERM|permission/i);
});
