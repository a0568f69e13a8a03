/**
 * The CLI end to end, as a user runs it: exit codes, artifacts, the workload
 * boundary, and SIGINT leaving nothing attached. Kernel tests need root.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import { notRoot, readJson, readNdjsonFile, ROOT, runCli, startCli, tempDir, writeRecipe } from './cli-helpers.ts';

test('validate: a good recipe exits 0, a bad one exits 2 and says where', async () => {
  const dir = tempDir();
  const good = writeRecipe(dir, 'good.yaml', 'name: g\nrun: "true"\nsteps:\n  - id: a\n    gadget: trace/exec\n');
  const bad = writeRecipe(dir, 'bad.yaml', 'name: b\nrun: "true"\nsteps:\n  - id: a\n    gadget: trace/exec\n    filter: pidd==1\n');
  const ok = await runCli(['validate', good]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /good\.yaml: ok \(1 step\)/);
  const ko = await runCli(['validate', bad]);
  assert.equal(ko.code, 2);
  assert.match(ko.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:13 steps\\[0\\]\\.filter: unknown field "pidd" \\(did you mean pid\\? known: timestamp, pid,`));
});

test('a bad command line exits 2 with the usage', async () => {
  for (const args of [['frobnicate'], ['run'], ['run', 'a.yaml', 'b.yaml'], ['run', 'x.yaml', '--bogus'], ['validate']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage:/);
  }
  const missing = await runCli(['run', '/nonexistent/recipe.yaml']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\/nonexistent\/recipe\.yaml cannot read the recipe/);
});

test('gadgets lists every gadget with its support status', async () => {
  const r = await runCli(['gadgets', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout);
  // Inspektor Gadget v0.5.0's catalogue, written out: a gadget missing from the registry, renamed or
  // added beyond it fails here (the registry checked against itself would pass whatever it held)
  const V050 = [
    'trace/exec', 'trace/open', 'trace/signal', 'trace/oomkill', 'trace/bind', 'trace/tcp', 'trace/tcpconnect', 'trace/capabilities',
    'trace/mount', 'trace/fsslower', 'trace/dns', 'trace/sni',
    'top/file', 'top/tcp', 'top/block-io',
    'profile/cpu', 'profile/block-io',
    'snapshot/process', 'snapshot/socket',
    'advise/seccomp-profile', 'advise/network-policy',
    'audit/seccomp',
    'traceloop',
  ];
  assert.equal(V050.length, 23);
  // beyond the catalogue, gadget-run's own: the egress allow-list and what it learns (issue 17)
  const OWN = ['audit/egress', 'advise/egress'];
  const ids: string[] = list.map((g: { id: string }) => g.id);
  assert.deepEqual([...ids].sort(), [...V050, ...OWN].sort());
  assert.deepEqual(ids, Object.keys(gadgets), "listed in the registry's order");
  for (const g of list) {
    if (process.getuid?.() === 0) assert.equal(g.supported, true, `${g.id}: ${g.reason}`);
    else assert.match(g.reason, /needs root/);
  }
});

test('run: a workload-bound recipe sees its workload and its children, not a process started outside', { skip: notRoot }, async () => {
  const dir = tempDir();
  const tag = `gr${process.pid}x${Date.now()}`;
  const recipe = writeRecipe(dir, 'bound.yaml', `name: bound
run: |
  sleep 0.3
  /bin/echo inside-${tag} > /dev/null
  sh -c '/bin/echo child-${tag}' > /dev/null
  sleep 0.7
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.ndjson]
assertions:
  - name: saw the workload
    expr: '"inside-${tag}" in steps.execs.args'
`);
  const out = path.join(dir, 'out');
  const cli = startCli(['run', recipe, '--out', out]);
  await cli.stderrUntil(/running: /);
  // started outside the workload while the step is attached
  await new Promise<void>((resolve) => spawn('/bin/echo', [`outside-${tag}`], { stdio: 'ignore' }).on('close', () => resolve()));
  const r = await cli.done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const execs = readNdjsonFile(path.join(out, 'execs.ndjson'));
  const args = execs.flatMap((e) => e.args);
  assert.ok(args.includes(`inside-${tag}`), 'the workload exec is seen');
  assert.ok(args.includes(`child-${tag}`), "the workload's grandchild is seen");
  assert.ok(!args.includes(`outside-${tag}`), 'a process outside the workload is not');
  // the workload's first exec (its shell) is seen: nothing runs before the step is attached
  assert.equal(execs[0].comm, 'sh');
  const summary = readJson(path.join(out, 'summary.json'));
  assert.equal(summary.status, 'passed');
  assert.equal(summary.workload.exitCode, 0);
  assert.match(summary.workload.command, new RegExp(`/bin/echo inside-${tag}`));
  assert.equal(summary.steps[0].events, execs.length);
  assert.equal(summary.steps[0].lost, 0);
});

test('run: the workload exit code is recorded and assertions can use it', { skip: notRoot }, async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'fail.yaml', `name: fail
run: exit 3
steps:
  - id: execs
    gadget: trace/exec
assertions:
  - name: workload passed
    expr: 'workload.exitCode = 0'
`);
  const r = await runCli(['run', recipe, '--out', path.join(dir, 'out')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const summary = readJson(path.join(dir, 'out', 'summary.json'));
  assert.equal(summary.workload.exitCode, 3);
  assert.equal(summary.status, 'failed');
  assert.deepEqual(summary.assertions, [
    { name: 'workload passed', passed: false, status: 'failed', message: 'expected true, got false: workload.exitCode was 3', evidence: { expr: 'workload.exitCode', value: 3 } },
  ]);
});

function bpfLinkIds(): Set<number> {
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'list'], { encoding: 'utf8' }) || '[]') as { id: number }[];
  return new Set(links.map((l) => l.id));
}

/**
 * The BPF programs and links a process holds through its fds (fdinfo prog_id, link_id): a
 * per-process view, so programs neighbours load at the same time are not taken for the run's.
 */
function heldBpfIds(pid: number): { progs: number[]; links: number[] } {
  const progs = new Set<number>();
  const links = new Set<number>();
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return { progs: [], links: [] }; // it has exited: it holds nothing
  }
  for (const fd of fds) {
    let info: string;
    try {
      info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const prog = /^prog_id:\s*(\d+)$/m.exec(info);
    const link = /^link_id:\s*(\d+)$/m.exec(info);
    if (prog) progs.add(Number(prog[1]));
    if (link) links.add(Number(link[1]));
  }
  return { progs: [...progs], links: [...links] };
}

function bpfProgIds(): Set<number> {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8' }) || '[]') as { id: number }[];
  return new Set(progs.map((p) => p.id));
}

test('SIGINT: detach, flush what was captured, status interrupted, exit 130, nothing left attached', { skip: notRoot }, async () => {
  const dir = tempDir();
  const marker = path.join(dir, `sigint-${process.pid}`);
  const recipe = writeRecipe(dir, 'long.yaml', `name: long
duration: 1h
steps:
  - id: opens
    gadget: trace/open
    filter: path~sigint-${process.pid}
    outputs: [opens.ndjson, opens.csv]
`);
  const out = path.join(dir, 'out');
  const cli = startCli(['run', recipe, '--out', out]);
  await cli.stderrUntil(/attached \d+ programs/);
  const held = heldBpfIds(cli.child.pid!);
  assert.ok(held.progs.length >= 2 && held.links.length >= 2, `the run has programs loaded and attached: ${JSON.stringify(held)}`);
  for (let i = 0; i < 5; i++) fs.closeSync(fs.openSync(marker, 'a'));
  await new Promise((r) => setTimeout(r, 100));
  cli.child.kill('SIGINT');
  const r = await cli.done;
  assert.equal(r.code, 130, r.stdout + r.stderr);
  const summary = readJson(path.join(out, 'summary.json'));
  assert.equal(summary.status, 'interrupted');
  assert.equal(summary.signal, 'SIGINT');
  assert.equal(summary.steps[0].status, 'interrupted');
  const opens = readNdjsonFile(path.join(out, 'opens.ndjson'));
  assert.equal(opens.length, 5);
  assert.ok(opens.every((o) => o.path === marker && o.fd >= 0 && o.err === 0));
  assert.equal(fs.readFileSync(path.join(out, 'opens.csv'), 'utf8').trim().split('\n').length, 6);
  const leftProgs = [...bpfProgIds()].filter((id) => held.progs.includes(id));
  assert.deepEqual(leftProgs, [], 'no program of the run is still loaded');
  const leftLinks = [...bpfLinkIds()].filter((id) => held.links.includes(id));
  assert.deepEqual(leftLinks, [], 'no link of the run is left');
});

test('every recipe in recipes/ runs (briefly) and passes', { skip: notRoot }, async () => {
  const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '../../recipes');
  const recipes = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(recipes.includes('quickstart.yaml'));
  for (const file of recipes) {
    const out = tempDir();
    const r = await runCli(['run', path.join(dir, file), '--out', out, '--max-duration', '2s']);
    assert.equal(r.code, 0, `${file}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    const summary = readJson(path.join(out, 'summary.json'));
    assert.equal(summary.status, 'passed', file);
    for (const s of summary.steps) {
      assert.equal(s.status, 'ok', `${file} ${s.id}: ${s.reason}`);
      for (const a of s.artifacts) assert.ok(fs.existsSync(path.join(out, a)), `${file}: ${a} written`);
    }
  }
});

test('a second SIGINT, even while programs are still loading, exits at once and leaves nothing loaded', { skip: notRoot }, async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'long.yaml', `name: long
duration: 1h
steps:
  - { id: execs, gadget: trace/exec }
  - { id: opens, gadget: trace/open }
  - { id: procs, gadget: snapshot/process }
`);
  const held: number[] = [];
  for (const afterMs of [150, 300, 450]) {
    const cli = startCli(['run', recipe, '--out', path.join(dir, `out-${afterMs}`)]);
    await new Promise((r) => setTimeout(r, afterMs));
    cli.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 20));
    held.push(...heldBpfIds(cli.child.pid!).progs);
    cli.child.kill('SIGINT');
    const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000).unref());
    const r = await Promise.race([cli.done, timeout]);
    if (r === 'hung') {
      cli.child.kill('SIGKILL');
      assert.fail(`still running 10 s after two SIGINTs (sent ${afterMs} ms after start)`);
    }
    assert.ok(r.signal === 'SIGINT' || r.code === 130, `exit ${r.code} signal ${r.signal}: ${r.stderr}`);
  }
  const left = [...bpfProgIds()].filter((id) => held.includes(id));
  assert.deepEqual(left, [], 'no program the runs held is still loaded');
});

test('run: a workload past its timeout is stopped and fails the run', { skip: notRoot }, async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'slow.yaml', `name: slow
run: sleep 30
timeout: 300ms
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.ndjson]
`);
  const started = Date.now();
  const r = await runCli(['run', recipe, '--out', path.join(dir, 'out')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.ok(Date.now() - started < 20_000, 'it did not wait for sleep 30');
  const summary = readJson(path.join(dir, 'out', 'summary.json'));
  assert.equal(summary.status, 'failed');
  assert.deepEqual(summary.workload, { command: 'sleep 30', exitCode: 143, timedOut: true, stoppedBy: 'timeout', user: { name: 'root', uid: 0, gid: 0 } });
  assert.equal(summary.steps[0].status, 'ok');
  assert.ok(readNdjsonFile(path.join(dir, 'out', 'execs.ndjson')).some((e) => e.comm === 'sleep'), 'the workload was traced until it stopped');
});

test('run: a process the workload moves into a nested cgroup is still seen', { skip: notRoot }, async () => {
  const { cgroup2Mount } = await import('../../src/runner/workload.ts');
  const dir = tempDir();
  const tag = `nested${process.pid}x${Date.now()}`;
  const recipe = writeRecipe(dir, 'nested.yaml', `name: nested
run: |
  cg=${cgroup2Mount()}$(sed -n 's/^0:://p' /proc/self/cgroup)
  mkdir "$cg/nested"
  sh -c "echo \\$\\$ > $cg/nested/cgroup.procs; exec /bin/echo ${tag}" > /dev/null
  rmdir "$cg/nested"
steps:
  - id: execs
    gadget: trace/exec
    outputs: [execs.ndjson]
`);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', recipe, '--out', out]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const execs = readNdjsonFile(path.join(out, 'execs.ndjson'));
  const nested = execs.filter((e) => e.args.includes(tag));
  assert.equal(nested.length, 1, 'the exec inside the nested cgroup');
  assert.notEqual(nested[0].cgroup_id, execs[0].cgroup_id, 'it ran in a different (child) cgroup');
});

test('run: missing BPF objects fail the step and say how to build them', { skip: notRoot }, async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'r.yaml', 'name: r\nsteps:\n  - { id: a, gadget: trace/open, duration: 100ms }\n');
  const r = await runCli(['run', recipe, '--out', path.join(dir, 'out'), '--objects', path.join(dir, 'no-objects')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const summary = readJson(path.join(dir, 'out', 'summary.json'));
  assert.equal(summary.steps[0].status, 'failed');
  assert.match(summary.steps[0].reason, /trace_open\.bpf\.o: BPF object not found — build the objects with `make -C bpf`/);
});

test('bin/gadget-run and the library entry run from the TypeScript when there is no fresh bundle', async () => {
  // a checkout without build/: the launchers (lib/launch.mjs) must fall back to tsx, not fail or run stale code
  const dir = tempDir();
  for (const p of ['bin', 'lib', 'index.mjs', 'src', 'schemas', 'package.json']) fs.cpSync(path.join(ROOT, p), path.join(dir, p), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const good = writeRecipe(dir, 'good.yaml', 'name: g\nrun: "true"\nsteps:\n  - id: a\n    gadget: trace/exec\n');
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(dir, 'bin/gadget-run'), 'validate', good], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /good\.yaml: ok \(1 step\)/);
  const lib = execFileSync(process.execPath, ['--input-type=module', '-e', `const { validate } = await import(${JSON.stringify(path.join(dir, 'index.mjs'))}); console.log(validate(${JSON.stringify(good)}).ok);`], { encoding: 'utf8' });
  assert.equal(lib.trim(), 'true');
  assert.ok(!fs.existsSync(path.join(dir, 'build')), 'nothing was bundled on the way');
});
