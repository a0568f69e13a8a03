/**
 * scripts/vm.mjs without booting anything: the module order an initramfs loads, the job
 * script a guest runs (run through the host's own sh), durations, the console lines that kill a
 * guest, the machine-wide lock (scripts/lock.mjs). Booting is the matrix's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
// @ts-expect-error -- a JavaScript module without types
import { FATAL_CONSOLE, guestSlot, jobScript, moduleOrder, parseDuration } from '../../scripts/vm.mjs';
// @ts-expect-error -- a JavaScript module without types
import { lock } from '../../scripts/lock.mjs';

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-vm-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A modules tree as depmod writes it: modules.dep (path: its dependencies) and modules.builtin. */
function modulesTree(t: TestContext, dep: string, builtin: string): string {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'modules.dep'), dep);
  fs.writeFileSync(path.join(dir, 'modules.builtin'), builtin);
  return dir;
}

test('modules load dependencies first, each once; built-in ones are left out; names with - and _ are one', (t) => {
  const dir = modulesTree(t, [
    'kernel/fs/9p/9p.ko.xz: kernel/fs/netfs/netfs.ko.xz kernel/net/9p/9pnet.ko.xz',
    'kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz',
    'kernel/net/9p/9pnet.ko.xz:',
    'kernel/fs/netfs/netfs.ko.xz:',
    'kernel/drivers/virtio/virtio_ring.ko.xz:',
    'kernel/fs/overlayfs/overlay.ko.xz:',
    '',
  ].join('\n'), 'kernel/drivers/virtio/virtio-pci.ko\n');
  const order = moduleOrder(dir, ['virtio_pci', '9pnet_virtio', '9p', 'overlay']).map((m: { name: string }) => m.name);
  assert.deepEqual(order, ['9pnet', 'virtio_ring', '9pnet_virtio', 'netfs', '9p', 'overlay']);
});

test('a module neither built in nor in modules.dep is an error naming it and the tree', (t) => {
  const dir = modulesTree(t, 'kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko\n', '');
  assert.throws(() => moduleOrder(dir, ['9p']), new RegExp(`module 9pnet is neither built in nor in ${dir}/modules.dep`));
});

test('the job script keeps every word and value whole, and runs with exactly the given environment', (t) => {
  const dir = tempDir(t);
  const cwd = path.join(dir, "a dir with 'quotes' and $x");
  fs.mkdirSync(cwd);
  const started = path.join(dir, 'started');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ODD: `it's "$HOME" \`id\` \\ ;|&\nline 2` };
  const argv = ['printf', '%s\\0', 'one arg', "it's", '$(id)', '', '*'];
  const script = path.join(dir, 'job.sh');
  fs.writeFileSync(script, jobScript({ started, cwd, env, cmd: [...argv, 'ENV:'] }));
  // printf prints each argument after the format, NUL-terminated: the words as the command got them
  const r = spawnSync('/bin/sh', [script], { encoding: 'utf8', env: { HOME: '/nonexistent', LEAK: 'no' } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\0').slice(0, -1), [...argv.slice(2), 'ENV:']);
  assert.match(fs.readFileSync(started, 'utf8'), /^\d+\.\d+\n$/, 'the uptime at the start');

  fs.writeFileSync(script, jobScript({ started, cwd, env, cmd: ['/bin/sh', '-c', 'pwd; env'] }));
  const e = spawnSync('/bin/sh', [script], { encoding: 'utf8', env: { HOME: '/nonexistent', LEAK: 'no' } });
  assert.equal(e.status, 0, e.stderr);
  const [pwd, ...lines] = e.stdout.trimEnd().split('\n');
  assert.equal(pwd, cwd);
  const got = lines.join('\n');
  assert.ok(got.includes(`ODD=${env.ODD}`), got);
  assert.doesNotMatch(got, /^(LEAK|HOME)=/m, 'nothing from the caller');
});

test('a cwd that does not exist ends the job with 125 before the command runs', (t) => {
  const dir = tempDir(t);
  const marker = path.join(dir, 'ran');
  const script = path.join(dir, 'job.sh');
  fs.writeFileSync(script, jobScript({ started: path.join(dir, 'started'), cwd: path.join(dir, 'missing'), env: {}, cmd: ['/usr/bin/touch', marker] }));
  const r = spawnSync('/bin/sh', [script], { encoding: 'utf8' });
  assert.equal(r.status, 125);
  assert.ok(!fs.existsSync(marker));
});

test('durations: 90s, 10m, 1h, 250ms and bare milliseconds; anything else names itself', () => {
  assert.deepEqual(['90s', '10m', '1h', '250ms', '1500', '1.5s'].map(parseDuration), [90_000, 600_000, 3_600_000, 250, 1500, 1500]);
  assert.throws(() => parseDuration('ten minutes'), /bad duration "ten minutes" \(use e\.g\. 90s, 10m, 1h\)/);
});

test('console lines that end a guest at once: lockups, panics, oops, RCU stalls, hung tasks; not ordinary ones', () => {
  const fatal = [
    'watchdog: BUG: soft lockup - CPU#0 stuck for 678s! [node:165]',
    'Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100',
    'rcu: INFO: rcu_preempt self-detected stall on CPU',
    'INFO: task node:201 blocked for more than 120 seconds.',
    'BUG: kernel NULL pointer dereference, address: 0000000000000008',
    'Oops: 0000 [#1] PREEMPT SMP NOPTI',
    'Watchdog detected hard LOCKUP on cpu 1',
  ];
  for (const line of fatal) assert.equal(FATAL_CONSOLE.exec(`[   12.5] ${line}\n[   12.6] next`)?.[0], line);
  for (const line of ['reboot: Power down', 'loop: module loaded', 'clocksource: Switched to clocksource tsc', 'WARNING: CPU: 0 PID: 1 at kernel/foo.c:1']) {
    assert.equal(FATAL_CONSOLE.exec(line), null, line);
  }
});

test('the lock: taken at once when free, over from a dead holder, waited for a live one up to maxWaitMs, named then', async (t) => {
  const file = path.join(tempDir(t), 'vm.lock');
  const first = await lock(file, { what: 'test' });
  assert.equal(fs.readFileSync(file, 'utf8'), `${process.pid}\n`);
  assert.ok(first.waitedMs < 1000);
  first.unlock();
  first.unlock(); // idempotent
  assert.equal(fs.existsSync(file), false);
  // a holder that is gone: taken over
  const dead = spawnSync('true');
  fs.writeFileSync(file, `${dead.pid}\n`);
  (await lock(file, { what: 'test' })).unlock();
  // a live holder (pid 1): waited for, then refused, naming it
  fs.writeFileSync(file, '1\n');
  const told: string[] = [];
  await assert.rejects(lock(file, { what: 'vm: run 6.1', log: (m: string) => told.push(m), maxWaitMs: 1500 }), /^Error: vm: run 6\.1: pid 1 \(.*\) still held .*vm\.lock after 2 s$/);
  assert.deepEqual(told, [`vm: run 6.1: waiting for pid 1 to finish (${file})`]);
  assert.equal(fs.readFileSync(file, 'utf8'), '1\n', 'a live holder keeps its lock');
});

test('guests of one process share its hold on the lock (the matrix\'s kernels side by side); another user waits until the last ends', async (t) => {
  const file = path.join(tempDir(t), 'vm.lock');
  const [a, b] = await Promise.all([guestSlot('vm: run 6.1', { file }), guestSlot('vm: run 6.12', { file })]);
  assert.equal(fs.readFileSync(file, 'utf8'), `${process.pid}\n`);
  // another user of guests (lock() is what a separate vm.mjs process takes): held while any share is
  const other = () => lock(file, { what: 'vm: run 6.1', maxWaitMs: 1200 });
  await assert.rejects(other(), /still held .*vm\.lock/);
  a.unlock();
  a.unlock(); // idempotent: one share released once
  await assert.rejects(other(), /still held .*vm\.lock/);
  b.unlock();
  assert.equal(fs.existsSync(file), false, 'released with the last guest');
  // a later guest of this process takes it afresh
  const c = await guestSlot('vm: run 6.1', { file });
  assert.equal(fs.readFileSync(file, 'utf8'), `${process.pid}\n`);
  c.unlock();
  assert.equal(fs.existsSync(file), false);
});
