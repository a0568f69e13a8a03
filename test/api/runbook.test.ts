/**
 * The runbooks in recipes/runbooks/ are zx scripts using the library by its package name;
 * each runs here, against the real kernel, as a user would start it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { kernelSkip, objectDir, REPO } from '../helpers/kernel.ts';
import { readJson, readNdjsonFile, tempDir } from '../runner/cli-helpers.ts';

const ZX = path.join(REPO, 'node_modules/.bin/zx');

test('exec-census.mjs: a ticket-ready folder with the programs run, the failed exec, the /etc files read and the neighbours', { skip: kernelSkip() }, async () => {
  objectDir(); // built
  const out = tempDir('gadget-run-runbook-');
  const token = `census-${process.pid}`;
  const command = `sh -c '/bin/true ${token}; /nonexistent/prog ${token} 2>/dev/null || true; cat /etc/hostname > /dev/null'`;
  const r = await promisify(execFile)(ZX, [path.join(REPO, 'recipes/runbooks/exec-census.mjs'), '--run', command, '--out', out], { cwd: REPO }).then(
    (ok) => ({ code: 0, ...ok }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal(r.code, 1, `a failed exec fails the census\n${r.stderr}`);
  assert.equal(r.stdout.trim(), path.join(out, 'ticket.md'));
  assert.deepEqual(fs.readdirSync(out).sort(), ['census.csv', 'neighbours.ndjson', 'run', 'ticket.md']);
  const summary = readJson(path.join(out, 'run/summary.json'));
  assert.equal(summary.status, 'failed');
  assert.deepEqual(summary.assertions.map((a: { name: string; status: string }) => [a.name, a.status]), [['every exec succeeded', 'failed']]);
  const census = fs.readFileSync(path.join(out, 'census.csv'), 'utf8').split('\n');
  assert.equal(census[0], 'program,runs,failed');
  assert.ok(census.includes('/bin/true,1,0'), census.join('\n'));
  assert.ok(census.includes('/nonexistent/prog,1,1'), census.join('\n'));
  const ticket = fs.readFileSync(path.join(out, 'ticket.md'), 'utf8');
  assert.match(ticket, /^# exec census: FAILED\n/);
  assert.match(ticket, new RegExp(`## Failed execs \\(1\\)\\n\\n- \` /nonexistent/prog ${token} \`: ret -2, in pid \\d+ \\(child of sh, pid \\d+\\)`));
  assert.match(ticket, /## Files read in \/etc \(\d+\)\n[^#]*- \/etc\/hostname\n/);
  // the command's own execs are the run's; the node-wide stream's others are the neighbours
  const execs = readNdjsonFile(path.join(out, 'run/execs.ndjson'));
  assert.deepEqual(execs.filter((e) => e.args.includes(token)).map((e) => [e.args, e.ret]), [[['/bin/true', token], 0], [['/nonexistent/prog', token], -2]]);
  assert.deepEqual(readNdjsonFile(path.join(out, 'neighbours.ndjson')).filter((e) => e.args.includes(token)), []);
});
