/**
 * A recipe's `seccomp: {profile, mode}`: the profile (untrusted input) is
 * parsed and checked with file:line:col and JSON path; a profile learned by
 * advise/seccomp-profile runs its workload again under errno mode with
 * nothing for audit/seccomp to see; a syscall outside it fails with EPERM
 * (errno) or succeeds and is reported (log), and the recipe's zero-rows
 * assertion fails the run. Kernel tests run the real CLI as root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { profileFor } from '../../src/gadgets/advise/seccomp-profile/recorder.ts';
import { RecipeError } from '../../src/runner/errors.ts';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { jsonErrorOffset, loadSeccompProfile, parseSeccompProfile, seccompUnsupported } from '../../src/runner/seccomp.ts';
import { syscallNumber } from '../../src/steps/names/index.ts';
import { SYSCALLS_X86_64 } from '../../src/steps/names/syscalls-x86_64.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { notRoot, readJson, readNdjsonFile, runCli, tempDir, writeRecipe } from './cli-helpers.ts';

/** The problems a profile's text has, as `where path: message` lines. */
function problemsOf(text: string, file = 'p.json'): string[] {
  try {
    parseSeccompProfile(text, file);
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    return err.problems.map((p) => `${p.where} ${p.path}: ${p.message}`);
  }
  return [];
}

const LEARNED = (names: string[]) => JSON.stringify(profileFor(names.map((n) => syscallNumber(n)!)).profile, null, 2);

describe('the profile, as untrusted input', () => {
  test('what advise/seccomp-profile writes reads back as the same names, for any set of syscalls', () => {
    const all = Object.keys(SYSCALLS_X86_64).map(Number);
    fc.assert(
      fc.property(fc.uniqueArray(fc.constantFrom(...all), { maxLength: 80 }), (numbers) => {
        const { profile } = profileFor(numbers);
        assert.deepEqual(parseSeccompProfile(JSON.stringify(profile, null, 2), 'p.json'), profile.syscalls[0].names);
      }),
    );
  });

  test('any JSON or any text: names or a RecipeError whose every problem says file:line:col, never another error', () => {
    const text = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string(),
      // a real profile with one value replaced
      fc.tuple(fc.constantFrom('defaultAction', 'architectures', 'syscalls', 'flags', 'archMap'), fc.jsonValue()).map(([k, v]) => JSON.stringify({ ...JSON.parse(LEARNED(['read', 'execve'])), [k]: v })),
    );
    fc.assert(
      fc.property(text, (t) => {
        try {
          const names = parseSeccompProfile(t, 'p.json');
          assert.ok(names.includes('execve'));
          assert.deepEqual(names, [...new Set(names)].sort());
        } catch (err) {
          if (!(err instanceof RecipeError)) throw err;
          assert.ok(err.problems.length > 0);
          for (const p of err.problems) assert.match(p.where, /^p\.json:\d+:\d+$/);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('the syntax scan agrees with JSON.parse: all of valid JSON passes, invalid JSON stops inside the text', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), fc.string({ maxLength: 2 }), (v, cut, junk) => {
        const json = JSON.stringify(v, null, cut % 3);
        assert.equal(jsonErrorOffset(json), json.length);
        const broken = json.slice(0, cut % (json.length + 1)) + junk;
        let valid = true;
        try {
          JSON.parse(broken);
        } catch {
          valid = false;
        }
        if (valid) assert.equal(jsonErrorOffset(broken), broken.length);
        else assert.ok(jsonErrorOffset(broken) <= broken.length);
      }),
      { numRuns: 500 },
    );
  });

  test('an unknown syscall name is named, with where it is and what was meant', () => {
    const text = LEARNED(['read', 'execve', 'write']).replace('"write"', '"wirte"');
    assert.deepEqual(problemsOf(text), [`p.json:13:9 syscalls[0].names[2]: unknown syscall "wirte": not an x86-64 syscall name (did you mean "write"?)`]);
  });

  test('another architecture, a deny list, conditions, other actions, no execve, not JSON: each said where', () => {
    const base = JSON.parse(LEARNED(['read', 'execve']));
    assert.match(problemsOf(JSON.stringify({ ...base, architectures: ['SCMP_ARCH_AARCH64'] }))[0], /^p\.json:1:\d+ architectures: the profile is for SCMP_ARCH_AARCH64, not this machine's SCMP_ARCH_X86_64/);
    assert.match(problemsOf(JSON.stringify({ ...base, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] }))[0], /architectures\[1\]: "SCMP_ARCH_Z80" is not an architecture/);
    assert.match(problemsOf(JSON.stringify({ ...base, defaultAction: 'SCMP_ACT_ALLOW' }))[0], /defaultAction: SCMP_ACT_ALLOW allows every syscall the profile does not list \(a deny list\)/);
    const rule = (r: object) => JSON.stringify({ ...base, syscalls: [...base.syscalls, r] });
    assert.match(problemsOf(rule({ names: ['kill'], action: 'SCMP_ACT_ERRNO' }))[0], /syscalls\[1\]\.action: "SCMP_ACT_ERRNO": only SCMP_ACT_ALLOW rules can be enforced/);
    assert.match(problemsOf(rule({ names: ['kill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }))[0], /syscalls\[1\]\.args: argument conditions are not supported/);
    assert.match(problemsOf(rule({ names: ['kill'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } }))[0], /syscalls\[1\]\.includes: conditional rules/);
    assert.match(problemsOf(rule({ names: ['kill'], action: 'SCMP_ACT_ALLOW', nmaes: [] }))[0], /syscalls\[1\]\.nmaes: unknown field "nmaes" of a rule/);
    assert.match(problemsOf(JSON.stringify({ ...base, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] }))[0], /syscalls: does not allow execve/);
    assert.match(problemsOf('{\n  "defaultAction": "SCMP_ACT_ERRNO",\n  "syscalls": [}\n')[0], /^p\.json:3:16 : not JSON: /);
    assert.match(problemsOf('{"a": "b\u0001"}')[0], /^p\.json:1:9 : not JSON: /);
    assert.match(problemsOf('[]')[0], /^p\.json:1:1 : a seccomp profile is a JSON object/);
    // Docker's older single-name rules and archMap read too
    assert.deepEqual(parseSeccompProfile(JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] }], syscalls: [{ name: 'execve', action: 'SCMP_ACT_ALLOW' }] }), 'p.json'), ['execve']);
  });

  test('the file: inside the recipe\'s folder (symlinks too), a regular file, its sha256 and count for the summary', (t) => {
    const dir = tempDir();
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const recipe = path.join(dir, 'r.yaml');
    fs.writeFileSync(path.join(dir, 'p.json'), LEARNED(['read', 'write', 'execve']));
    const plan = loadSeccompProfile(recipe, { profile: 'p.json', mode: 'log' });
    assert.deepEqual(plan.summary, { profile: 'p.json', sha256: createHash('sha256').update(fs.readFileSync(path.join(dir, 'p.json'))).digest('hex'), mode: 'log', syscalls: 3 });
    assert.deepEqual(plan.numbers, [0, 1, 59]);
    const outside = tempDir();
    t.after(() => fs.rmSync(outside, { recursive: true, force: true }));
    fs.writeFileSync(path.join(outside, 'p.json'), LEARNED(['execve']));
    fs.symlinkSync(path.join(outside, 'p.json'), path.join(dir, 'link.json'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.json')]);
    const refused = (profile: string) => {
      try {
        loadSeccompProfile(recipe, { profile });
      } catch (err) {
        assert.ok(err instanceof RecipeError, String(err));
        return `${err.problems[0].where} ${err.problems[0].path}: ${err.problems[0].message}`;
      }
      return 'accepted';
    };
    assert.match(refused('link.json'), /r\.yaml seccomp\.profile: seccomp profile "link\.json" resolves to .*, outside the recipe's folder/);
    assert.match(refused('missing.json'), /seccomp profile .*missing\.json does not exist: learn one with advise\/seccomp-profile/);
    assert.match(refused('/etc/passwd.json'), /is absolute/);
    assert.match(refused('../x.json'), /climbs out/);
    assert.match(refused('fifo.json'), /is not a regular file/);
    // nested deeper than any profile: still a problem with a place, not a crash
    assert.match(problemsOf('{"syscalls": ' + '['.repeat(100_000))[0], /^p\.json:1:\d+ : not JSON/);
    assert.match(problemsOf(`{"defaultAction": ${'['.repeat(5000)}${']'.repeat(5000)}}`)[0], /^p\.json:\d+:\d+ defaultAction: .* is not a seccomp action/);
  });

  test('a recipe: seccomp needs run, a .json path inside the folder, and log mode needs an audit/seccomp step to report to', () => {
    const problems = (yaml: string) => {
      try {
        parseRecipe(yaml, 'r.yaml');
        return [];
      } catch (err) {
        if (!(err instanceof RecipeError)) throw err;
        return err.problems.map((p) => `${p.where} ${p.path}: ${p.message}`);
      }
    };
    const steps = 'steps:\n  - { id: denied, gadget: audit/seccomp }\n';
    assert.deepEqual(problems(`name: r\nrun: "true"\nseccomp: { profile: p.json, mode: log }\n${steps}`), []);
    assert.match(problems(`name: r\nseccomp: { profile: p.json }\n${steps}`).join('\n'), /r\.yaml:2:10 seccomp: seccomp is about the workload/);
    assert.match(problems(`name: r\nrun: "true"\nseccomp: { profile: p.yaml }\n${steps}`).join('\n'), /seccomp\.profile: seccomp profile "p\.yaml" must end in \.json/);
    assert.match(problems(`name: r\nrun: "true"\nseccomp: { profile: p.json, mode: block }\n${steps}`).join('\n'), /seccomp\.mode: must be equal to one of the allowed values/);
    assert.match(problems(`name: r\nrun: "true"\nseccomp: { profile: [1, 2] }\n${steps}`).join('\n'), /seccomp\.profile: must be string/);
    assert.match(problems(`name: r\nrun: "true"\nseccomp: { profile: p.json, mode: log }\nsteps:\n  - { id: e, gadget: trace/exec }\n`).join('\n'), /r\.yaml:3:\d+ seccomp\.mode: log mode lets the syscalls outside the profile through: add a \(non-optional\) audit\/seccomp step/);
  });
});

/** A workload (test/fixtures/seccomp_workload.c) and a folder for its recipes, open to `nobody` too. */
function setup(t: TestContext): { dir: string; workload: string } {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  const workload = path.join(dir, 'seccomp_workload');
  fs.copyFileSync(compileFixture(t, 'seccomp_workload'), workload);
  fs.chmodSync(workload, 0o755);
  fs.mkdirSync(path.join(dir, 'data'), { mode: 0o777 });
  fs.chmodSync(path.join(dir, 'data'), 0o777);
  return { dir, workload };
}

/** Learn the workload's profile with advise/seccomp-profile into DIR/profile.json. */
async function learn(dir: string, run: string, user = ''): Promise<string[]> {
  const recipe = writeRecipe(dir, 'learn.yaml', `name: learn\nrun: ${JSON.stringify(run)}\n${user}steps:\n  - { id: profile, gadget: advise/seccomp-profile, outputs: [seccomp.json] }\n`);
  const out = path.join(dir, 'learned');
  const r = await runCli(['run', recipe, '--out', out]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  fs.copyFileSync(path.join(out, 'seccomp.json'), path.join(dir, 'profile.json'));
  return readJson(path.join(dir, 'profile.json')).syscalls[0].names;
}

/** Run the workload under the profile with an audit/seccomp step that must stay empty. */
async function enforce(dir: string, run: string, mode: 'log' | 'errno', user = '') {
  const recipe = writeRecipe(dir, `enforce-${mode}.yaml`, `name: enforce
run: ${JSON.stringify(run)}
${user}seccomp: { profile: profile.json, mode: ${mode} }
steps:
  - id: denied
    gadget: audit/seccomp
    outputs: [denied.ndjson]
assertions:
  - name: nothing outside the profile
    expr: $count(steps.denied) = 0
`);
  const out = path.join(dir, `out-${mode}`);
  const r = await runCli(['run', recipe, '--out', out]);
  return { r, out, summary: readJson(path.join(out, 'summary.json')), denied: readNdjsonFile(path.join(out, 'denied.ndjson')) };
}

describe('a workload under its learned profile', { skip: notRoot || seccompUnsupported('log') }, () => {
  test('errno mode: the same workload passes, audit/seccomp sees nothing, the summary records the profile', async (t) => {
    const { dir, workload } = setup(t);
    const run = `${workload} ${dir}/data/file > ${dir}/data/stdout`;
    const names = await learn(dir, run);
    assert.ok(!names.includes('sysinfo'), 'the plain run never calls sysinfo');
    const { r, out, summary, denied } = await enforce(dir, run, 'errno');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'data/stdout'), 'utf8'), 'read seccomp\n');
    assert.deepEqual(denied, []);
    assert.equal(summary.steps[0].status, 'ok');
    const sha256 = createHash('sha256').update(fs.readFileSync(path.join(dir, 'profile.json'))).digest('hex');
    assert.deepEqual(summary.workload.seccomp, { profile: 'profile.json', sha256, mode: 'errno', syscalls: names.length });
    assert.match(r.stderr, new RegExp(`under the seccomp profile profile\\.json in errno mode: ${names.length} syscalls allowed`));
    const line = `under seccomp profile profile.json (errno mode, ${names.length} syscalls, sha256 ${sha256.slice(0, 12)})`;
    assert.ok((r.stdout + r.stderr).includes(line), 'the terminal says so');
    assert.ok(fs.readFileSync(path.join(out, 'report.md'), 'utf8').includes(line), 'report.md says so');
  });

  test('a syscall outside the profile: errno fails it with EPERM, log lets it through; audit/seccomp reports it and the assertion fails the run', async (t) => {
    const { dir, workload } = setup(t);
    await learn(dir, `${workload} ${dir}/data/file > ${dir}/data/stdout`);
    const extra = `${workload} ${dir}/data/file extra > ${dir}/data/stdout`;

    const errno = await enforce(dir, extra, 'errno');
    assert.equal(errno.r.code, 1, errno.r.stdout + errno.r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'data/stdout'), 'utf8'), 'read seccomp\nsysinfo Operation not permitted\n');
    assert.equal(errno.summary.status, 'failed');
    assert.equal(errno.summary.workload.exitCode, 0, 'the workload itself went on');
    assert.deepEqual(errno.denied.map((e) => [e.comm, e.syscall, e.action, e.err_name]), [['seccomp_workloa', 'sysinfo', 'errno', 'EPERM']]);
    assert.deepEqual(errno.summary.assertions.map((a: { name: string; status: string }) => [a.name, a.status]), [['nothing outside the profile', 'failed']]);

    const log = await enforce(dir, extra, 'log');
    assert.equal(log.r.code, 1, log.r.stdout + log.r.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'data/stdout'), 'utf8'), 'read seccomp\nsysinfo ok\n');
    assert.equal(log.summary.workload.seccomp.mode, 'log');
    assert.deepEqual(log.denied.map((e) => [e.comm, e.syscall, e.action]), [['seccomp_workloa', 'sysinfo', 'log']]);
    assert.equal(log.summary.status, 'failed');
  });

  test('after the privilege drop: the workload runs as nobody under the profile, traced from its first exec', async (t) => {
    const { dir, workload } = setup(t);
    const run = `${workload} ${dir}/data/file extra > ${dir}/data/stdout`;
    await learn(dir, run, 'user: nobody\n');
    const { r, summary, denied } = await enforce(dir, run, 'errno', 'user: nobody\n');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(denied, []);
    assert.deepEqual(summary.workload.user, { name: 'nobody', uid: 65534, gid: 65534 });
    assert.equal(fs.readFileSync(path.join(dir, 'data/stdout'), 'utf8'), 'read seccomp\nsysinfo ok\n');
    assert.equal(fs.statSync(path.join(dir, 'data/file')).uid, 65534);
  });

  test('a malformed profile: exit 2 before anything runs, saying which file, line, column and JSON path; nothing written', async (t) => {
    const { dir, workload } = setup(t);
    fs.writeFileSync(path.join(dir, 'profile.json'), LEARNED(['read', 'execve']).replace('"read"', '"raed"'));
    const recipe = writeRecipe(dir, 'bad.yaml', `name: bad\nrun: ${workload} ${dir}/data/file\nseccomp: { profile: profile.json }\nsteps:\n  - { id: denied, gadget: audit/seccomp }\n`);
    const out = path.join(dir, 'out');
    const r = await runCli(['run', recipe, '--out', out]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${dir}/profile\\.json:\\d+:\\d+ syscalls\\[0\\]\\.names\\[1\\]: unknown syscall "raed": not an x86-64 syscall name \\(did you mean "read"\\?\\)`));
    assert.ok(!fs.existsSync(out), 'no --out folder was made');
    assert.ok(!fs.existsSync(path.join(dir, 'data/file')), 'the workload never ran');
    const v = await runCli(['validate', recipe]);
    assert.equal(v.code, 2);
    assert.match(v.stderr, /unknown syscall "raed"/);
  });
});
