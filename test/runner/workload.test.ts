/**
 * The workload's lifecycle and every way a run ends: the workload is stopped
 * as a whole cgroup (SIGTERM to every process, SIGKILL after the grace
 * period) at its timeout, at --max-duration and on a signal; a second signal,
 * a crash or a full disk still kill it and leave a summary; a later run
 * removes what a SIGKILLed one left; the workload never runs with more
 * privilege than whoever started gadget-run. Kernel tests need root.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { isOwnerAlive, ownedName, ownerOf, processStartTime, sweepStale } from '../../src/runner/ownership.ts';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { cgroupPids, createWorkloadCgroup, destroyCgroup, invokingUser, isPopulated, startWorkload } from '../../src/runner/workload.ts';
import { bpfFds, objectDir } from '../helpers/kernel.ts';
import { sharedTempDir } from '../helpers/install.ts';
import { cgroupsOf, leftBehind, newBpfFds, processesWith } from '../helpers/leaks.ts';
import { uniqueToken } from '../helpers/session.ts';
import { endsWithin, notRoot, readJson, runCli, startCli, tempDir, writeRecipe } from './cli-helpers.ts';

/**
 * A workload whose shell carries `token` in its command line while it sleeps (the trailing
 * `true` keeps dash from exec'ing its last command in place of itself).
 */
const sleeper = (token: string) => `: ${token}; sleep 60; true`;
/** The same, ignoring SIGINT and SIGTERM (so does its sleep: ignored signals stay ignored across exec). */
const stubborn = (token: string) => `trap '' INT TERM; ${sleeper(token)}`;

/**
 * Until its shell runs `sleep`, a workload may not have set its traps yet (or even started):
 * signals sent before then test nothing. Waits for two processes in the CLI's workload cgroup.
 */
async function workloadSleeping(cli: ReturnType<typeof startCli>): Promise<void> {
  await cli.stderrUntil(/running: /);
  for (;;) {
    const [cg] = cgroupsOf(cli.child.pid!);
    if (cg && cgroupPids(cg).length >= 2) return;
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) throw new Error('the CLI exited before its workload ran');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Send `signal` and hold the CLI to the README's deadline for it: the time from
 * the signal to the CLI's exit, with its margin recorded in the test's output
 * (node --test prints diagnostics), so a run that creeps towards the deadline
 * shows before it breaks it.
 */
function signalWithin(t: TestContext, cli: ReturnType<typeof startCli>, signal: NodeJS.Signals, deadlineMs: number, promise: string): () => Promise<void> {
  const exited = once(cli.child, 'exit').then(() => performance.now());
  const sent = performance.now();
  cli.child.kill(signal);
  return async () => {
    const took = (await exited) - sent;
    t.diagnostic(`${signal}: ended ${(took / 1000).toFixed(2)} s after it; promised ${promise} (${(deadlineMs / 1000).toFixed(1)} s): margin ${((deadlineMs - took) / 1000).toFixed(2)} s`);
    assert.ok(took <= deadlineMs, `the CLI ended ${(took / 1000).toFixed(2)} s after ${signal}; the README promises ${promise} (${deadlineMs / 1000} s)`);
  };
}

/** A recipe around `run`, with the cheapest step. */
function recipe(dir: string, name: string, run: string, extra = ''): string {
  return writeRecipe(dir, `${name}.yaml`, `name: ${name}\nrun: ${JSON.stringify(run)}\n${extra}steps:\n  - { id: execs, gadget: trace/exec }\n`);
}

test('ownership: a name carries its owner pid and start time; sweepStale removes only what a gone owner made', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mine = fs.mkdtempSync(path.join(dir, ownedName('.spool')));
  assert.deepEqual(ownerOf(mine), { prefix: '.spool', pid: process.pid, startTime: processStartTime(process.pid) });
  // a real process that is gone, and one that lives (not us)
  const gone = spawn('sleep', ['30']);
  await once(gone, 'spawn');
  const goneName = `.spool@${gone.pid}-${processStartTime(gone.pid!)}-Ab12Cd`;
  gone.kill('SIGKILL');
  await once(gone, 'close');
  const alive = spawn('sleep', ['30']);
  await once(alive, 'spawn');
  t.after(() => alive.kill('SIGKILL'));
  const aliveName = `.spool@${alive.pid}-${processStartTime(alive.pid!)}-Ef34Gh`;
  // the live pid with another start time: a reused pid, its owner is gone
  const reusedName = `.spool@${alive.pid}-1-Ij56Kl`;
  const otherPrefix = `cache@${gone.pid}-${processStartTime(process.pid)}-Mn78Op`;
  for (const n of [goneName, aliveName, reusedName, otherPrefix, '.spool-12345', 'notes']) fs.mkdirSync(path.join(dir, n));
  assert.equal(isOwnerAlive(goneName), false);
  assert.equal(isOwnerAlive(aliveName), true);
  assert.equal(isOwnerAlive('.spool-12345'), true, 'a name of another shape is not ours to judge');
  const removed = await sweepStale(dir, '.spool');
  assert.deepEqual(removed.map((p) => path.basename(p)).sort(), [goneName, reusedName].sort());
  assert.deepEqual(fs.readdirSync(dir).sort(), [path.basename(mine), aliveName, otherPrefix, '.spool-12345', 'notes'].sort());
  assert.throws(() => ownedName('a@b'), /must not contain "@"/);
});

test('stop: SIGTERM reaches every process in the cgroup, not only the shell', { skip: notRoot }, async (t) => {
  const token = uniqueToken('wl-term');
  const cg = createWorkloadCgroup('stop-test');
  t.after(() => destroyCgroup(cg.path));
  const wl = startWorkload(`sh -c 'sleep 60' ${token} & sh -c 'sleep 60' ${token} & wait`, cg, invokingUser());
  while (processesWith(token).length < 2) await new Promise((r) => setTimeout(r, 20));
  const r = await wl.stop(30_000);
  assert.equal(r.forced, false, 'everything exited on SIGTERM, within the grace period');
  assert.equal(isPopulated(cg.path), false);
  assert.deepEqual(processesWith(token), []);
  assert.equal(await wl.exited, 143);
});

test('stop: SIGTERM reaches the children a shell forks while it is being signalled', { skip: notRoot }, async (t) => {
  // eight shells fork a sleep every moment: a signal sent from one read of cgroup.procs misses the
  // children forked after that read and before their shell's own signal arrives (with one read,
  // this failed in 1 of 2 runs here, and 6.1 under TCG missed one with the test above)
  for (let round = 0; round < 5; round++) {
    const cg = createWorkloadCgroup('stop-test');
    t.after(() => destroyCgroup(cg.path));
    const wl = startWorkload('for j in 1 2 3 4 5 6 7 8; do (for i in $(seq 300); do sleep 60 & done; wait) & done; wait', cg, invokingUser());
    while (cgroupPids(cg.path).length < 10 + 20 * round) await new Promise((r) => setTimeout(r, 5));
    const r = await wl.stop(10_000);
    assert.equal(r.forced, false, `round ${round}: every process exited on SIGTERM, none was left to the SIGKILL`);
    assert.deepEqual(cgroupPids(cg.path), []);
  }
});

test('stop: what ignores SIGTERM is killed after the grace period', { skip: notRoot }, async (t) => {
  const token = uniqueToken('wl-kill');
  const cg = createWorkloadCgroup('stop-test');
  t.after(() => destroyCgroup(cg.path));
  const wl = startWorkload(stubborn(token), cg, invokingUser());
  // the shell has set its trap once it runs sleep
  while (cgroupPids(cg.path).length < 2) await new Promise((r) => setTimeout(r, 20));
  const r = await wl.stop(300);
  assert.equal(r.forced, true);
  assert.deepEqual(cgroupPids(cg.path), []);
  assert.equal(await wl.exited, 137);
});

test('in-process run: the workload, its cgroup and every BPF fd are gone afterwards', { skip: notRoot }, async () => {
  const token = uniqueToken('wl-inproc');
  const dir = tempDir();
  const loaded = parseRecipe(`name: inproc\nrun: "sleep 60 & : ${token}; sleep 0.2"\nsteps:\n  - { id: execs, gadget: trace/exec }\n`, 'inproc.yaml');
  const before = bpfFds();
  const summary = await runRecipe(loaded, { outDir: path.join(dir, 'out'), objectDir: objectDir(), log: () => {} });
  assert.equal(summary.status, 'passed', summary.error);
  assert.equal(summary.workload?.exitCode, 0);
  assert.deepEqual(leftBehind({ pid: process.pid, token }), [], 'the background sleep went with the cgroup');
  assert.deepEqual(newBpfFds(before), []);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'out')).filter((f) => f.startsWith('.capture')), []);
});

test('timeout: a workload that ignores SIGTERM is killed after its grace period', { skip: notRoot, timeout: 60_000 }, async () => {
  const dir = tempDir();
  const token = uniqueToken('wl-timeout');
  const file = recipe(dir, 'stubborn', stubborn(token), 'timeout: 1s\ngrace: 1s\n');
  const r = await endsWithin(startCli(['run', file, '--out', path.join(dir, 'out')], { token }), 30_000, 'its 1 s timeout and 1 s grace period');
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const summary = readJson(path.join(dir, 'out', 'summary.json'));
  assert.equal(summary.status, 'failed');
  assert.equal(summary.workload.timedOut, true);
  assert.equal(summary.workload.stoppedBy, 'timeout');
  assert.equal(summary.workload.killed, true);
  assert.equal(summary.workload.exitCode, 137);
});

test('--max-duration bounds the workload too', { skip: notRoot, timeout: 60_000 }, async () => {
  const dir = tempDir();
  const token = uniqueToken('wl-maxdur');
  const file = recipe(dir, 'long', sleeper(token));
  const r = await endsWithin(startCli(['run', file, '--out', path.join(dir, 'out'), '--max-duration', '1s'], { token }), 30_000, '--max-duration 1s');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const summary = readJson(path.join(dir, 'out', 'summary.json'));
  assert.equal(summary.status, 'passed');
  assert.equal(summary.workload.stoppedBy, 'max-duration');
  assert.equal(summary.workload.exitCode, 143);
  assert.equal(summary.workload.timedOut, undefined, 'a cap for trying a recipe out is not a failure');
});

test('one SIGINT ends a run whose workload ignores it within its grace period + 2 s', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const dir = tempDir();
  const token = uniqueToken('wl-int');
  const cli = startCli(['run', recipe(dir, 'stubborn', stubborn(token), 'grace: 2s\n'), '--out', path.join(dir, 'out')], { token });
  await workloadSleeping(cli);
  const inTime = signalWithin(t, cli, 'SIGINT', 4000, 'grace + 2 s');
  const r = await endsWithin(cli, 30_000, 'one SIGINT');
  await inTime();
  assert.equal(r.code, 130, r.stdout + r.stderr);
  const summary = readJson(path.join(dir, 'out', 'summary.json'));
  assert.equal(summary.status, 'interrupted');
  assert.equal(summary.workload.stoppedBy, 'signal');
  assert.equal(summary.workload.killed, true);
});

test('one SIGTERM ends a run within the recipe\'s grace period + 2 s', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const dir = tempDir();
  const token = uniqueToken('wl-term');
  const cli = startCli(['run', recipe(dir, 'stubborn', stubborn(token), 'grace: 1s\n'), '--out', path.join(dir, 'out')], { token });
  await workloadSleeping(cli);
  const inTime = signalWithin(t, cli, 'SIGTERM', 3000, 'grace + 2 s');
  const r = await endsWithin(cli, 20_000, 'one SIGTERM');
  await inTime();
  assert.equal(r.code, 143, r.stdout + r.stderr);
  assert.equal(readJson(path.join(dir, 'out', 'summary.json')).workload.killed, true);
});

test('a second SIGINT kills the workload at once, removes its cgroup and leaves a summary, within a second', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const dir = tempDir();
  const token = uniqueToken('wl-twice');
  const out = path.join(dir, 'out');
  const cli = startCli(['run', recipe(dir, 'stubborn', stubborn(token)), '--out', out], { token });
  await workloadSleeping(cli);
  cli.child.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 300));
  const inTime = signalWithin(t, cli, 'SIGINT', 1000, 'within a second of the second signal');
  // the leak check in `done` proves the workload and its cgroup are gone
  const r = await endsWithin(cli, 10_000, 'two SIGINTs');
  await inTime();
  assert.ok(r.signal === 'SIGINT' || r.code === 130, `exit ${r.code} signal ${r.signal}: ${r.stderr}`);
  assert.match(r.stderr, /SIGINT: .*the workload has 10\.0s to exit/, 'without grace in the recipe, 10 s');
  const summary = readJson(path.join(out, 'summary.json'));
  assert.equal(summary.status, 'interrupted');
  assert.match(summary.error, /second SIGINT: stopped at once/);
  assert.equal(summary.workload.killed, true);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith('.capture')), []);
});

test('a full disk while spooling: the workload is killed, its cgroup removed, the summary says ENOSPC', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const dir = tempDir();
  const out = path.join(dir, 'small');
  fs.mkdirSync(out);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', out]);
  t.after(() => execFileSync('umount', [out]));
  const token = uniqueToken('wl-enospc');
  // ~60k opens, a few MiB of events: far more than 256 KiB; then it would sleep on
  const run = `: ${token}; i=0; while [ $i -lt 60000 ]; do : < /dev/null; i=$((i+1)); done; sleep 60`;
  const file = writeRecipe(dir, 'full.yaml', `name: full\nrun: ${JSON.stringify(run)}\nsteps:\n  - { id: opens, gadget: trace/open, outputs: [opens.ndjson] }\n`);
  const r = await endsWithin(startCli(['run', file, '--out', out], { token }), 40_000, 'the disk filled up');
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /ENOSPC/);
  const summary = readJson(path.join(out, 'summary.json'));
  assert.equal(summary.status, 'error');
  assert.match(summary.error, /ENOSPC.*free space there or give --out on a larger one/);
  assert.equal(summary.steps[0].status, 'failed');
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith('.capture')), [], 'the spool went (it also made room for the summary)');
});

test('a later run removes the cgroup and the workload a SIGKILLed run left, not a live run\'s', { skip: notRoot, timeout: 60_000 }, async () => {
  const dir = tempDir();
  const token = uniqueToken('wl-stale');
  const liveToken = uniqueToken('wl-live');
  const killed = startCli(['run', recipe(dir, 'stale', sleeper(token)), '--out', path.join(dir, 'out-killed')], { leaves: true });
  const live = startCli(['run', recipe(dir, 'live', sleeper(liveToken)), '--out', path.join(dir, 'out-live')], { token: liveToken });
  await Promise.all([workloadSleeping(killed), workloadSleeping(live)]);
  killed.child.kill('SIGKILL');
  // not `done`: the orphaned workload holds the CLI's stdout and stderr open
  await once(killed.child, 'exit');
  const stale = cgroupsOf(killed.child.pid!);
  assert.equal(stale.length, 1, 'the SIGKILLed run left its cgroup');
  assert.ok(processesWith(token).length > 0, 'and its workload runs on');
  const captures = () => fs.readdirSync(path.join(dir, 'out-killed')).filter((f) => ownerOf(f)?.pid === killed.child.pid);
  assert.equal(captures().length, 1, 'and its capture folder');
  // a later run into the same --out
  const r = await runCli(['run', recipe(dir, 'later', 'true'), '--out', path.join(dir, 'out-killed')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stderr, /removed the workload cgroup of a run that is gone/);
  assert.deepEqual(captures(), [], 'the capture folder of the SIGKILLed run is gone');
  assert.deepEqual(leftBehind({ pid: killed.child.pid!, token }), []);
  assert.equal(cgroupsOf(live.child.pid!).length, 1, "a live run's cgroup is not touched");
  assert.ok(processesWith(liveToken).length > 0, "nor its workload");
  live.child.kill('SIGINT');
  assert.equal((await endsWithin(live, 20_000, 'SIGINT')).code, 130);
});

test('under sudo the workload runs as the user who ran sudo, with that user\'s groups and HOME', { skip: notRoot }, async (t) => {
  const dir = sharedTempDir(t, 'gadget-run-user-');
  fs.chmodSync(dir, 0o777);
  const file = path.join(dir, 'id.txt');
  const r = await runCli(['run', recipe(dir, 'who', `id -u > ${file}; id -G >> ${file}; echo "$HOME" >> ${file}`), '--out', path.join(dir, 'out')], { cwd: dir, env: { SUDO_UID: '65534', SUDO_GID: '65534', SUDO_USER: 'nobody' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const [uid, groups, home] = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(uid, '65534');
  assert.equal(groups, execFileSync('id', ['-G', 'nobody'], { encoding: 'utf8' }).trim());
  assert.equal(home, execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).split(':')[5]);
  assert.deepEqual(readJson(path.join(dir, 'out', 'summary.json')).workload.user, { name: 'nobody', uid: 65534, gid: 65534 });
});

/** Run `id -u` as the workload, with these extra CLI args and environment, and return what it printed. */
async function workloadUid(t: import('node:test').TestContext, extra: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ uid?: string; code: number | null; stderr: string }> {
  const dir = sharedTempDir(t, 'gadget-run-user-');
  fs.chmodSync(dir, 0o777);
  const file = path.join(dir, 'uid.txt');
  const r = await runCli(['run', recipe(dir, 'who', `id -u > ${file}`, extra), '--out', path.join(dir, 'out'), ...args], { cwd: dir, env });
  return { uid: fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : undefined, code: r.code, stderr: r.stderr };
}

const SUDO_NOBODY = { SUDO_UID: '65534', SUDO_GID: '65534', SUDO_USER: 'nobody' };

test('--user root runs the workload as root even under sudo; --user NAME as that user', { skip: notRoot }, async (t) => {
  assert.equal((await workloadUid(t, '', ['--user', 'root'], SUDO_NOBODY)).uid, '0');
  assert.equal((await workloadUid(t, '', ['--user', 'nobody'])).uid, '65534');
  assert.equal((await workloadUid(t, '', ['--user', '65534'])).uid, '65534');
});

test('started by root without sudo the workload runs as root; a recipe may name a non-root user', { skip: notRoot }, async (t) => {
  assert.equal((await workloadUid(t, '', [])).uid, '0');
  assert.equal((await workloadUid(t, 'user: nobody\n', [])).uid, '65534');
});

test('a recipe may not run its workload as root; an unknown user is a recipe error naming it', async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const user of ['root', '0']) {
    const r = await runCli(['validate', recipe(dir, 'asroot', 'true', `user: ${user}\n`)]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /asroot\.yaml:3:7 user: a recipe may not run its workload as root .*pass --user root on the command line/);
  }
  const unknown = `nosuchuser${process.pid}`;
  const r = await runCli(['run', recipe(dir, 'unknown', 'true', `user: ${unknown}\n`), '--out', path.join(dir, 'out')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`unknown\\.yaml user: no user "${unknown}" on this machine`));
  const cli = await runCli(['run', recipe(dir, 'ok', 'true'), '--out', path.join(dir, 'out'), '--user', unknown]);
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, new RegExp(`--user no user "${unknown}"`));
  assert.ok(!fs.existsSync(path.join(dir, 'out')), 'nothing ran');
});
