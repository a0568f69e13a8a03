/**
 * Enforcement ends with gadget-run, whatever way it ends: the cgroup programs
 * hang on bpf_links on the cgroup v2 root that only this process's file
 * descriptors hold (never pinned), so a SIGKILL of gadget-run leaves nothing
 * attached to the root, the workload's cgroup or any other cgroup, and no
 * egress program loaded — bpftool says so. The run's programs are known by
 * the ids the CLI holds (/proc/PID/fdinfo): other runs on this machine may
 * have egress programs of their own on the root at the same time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroup2Mount, destroyCgroup } from '../../src/runner/workload.ts';
import { gadgets } from '../../src/steps/index.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { cgroupsOf } from '../helpers/leaks.ts';
import { startCli, tempDir, writeRecipe } from '../runner/cli-helpers.ts';
import { attachedBelow, attachedTo, egressProgsOf, linksOf, namesOf, stillLoaded } from './attached.ts';

const PROGRAMS = ['egress_connect4', 'egress_connect6', 'egress_dns', 'egress_sendmsg4', 'egress_sendmsg6'];

test('SIGKILL of gadget-run leaves no program attached to the cgroup root or the workload\'s cgroup, no link, no egress program loaded', { skip: kernelSkip(gadgets['audit/egress']) }, async (t) => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'kill.yaml', 'name: egress-kill\nrun: sleep 120\negress:\n  mode: block\n  allow: [example.com]\n');
  const cli = startCli(['run', recipe, '--out', `${dir}/out`], { leaves: true });
  await cli.stderrUntil(/running: sleep 120/);
  const [cg] = cgroupsOf(cli.child.pid!);
  assert.ok(cg, 'the run made its workload cgroup');
  t.after(() => destroyCgroup(cg).catch(() => {}));
  const root = cgroup2Mount();
  const progs = egressProgsOf(cli.child.pid!);
  assert.equal(progs.length, PROGRAMS.length, `gadget-run holds the five egress programs: ${progs}`);
  assert.deepEqual(namesOf(attachedTo(root), progs), PROGRAMS, 'attached to the cgroup v2 root while the run lives');
  assert.deepEqual(namesOf(attachedTo(cg), progs), [], 'not to the workload\'s cgroup: the root covers it and its containers');
  assert.equal(linksOf(progs).length, PROGRAMS.length, 'five bpf_links hold them');
  assert.deepEqual(attachedBelow(root, progs).sort(), PROGRAMS, 'bpftool cgroup tree sees them, on the root only');

  // 'exit', not 'close': the orphaned workload (sleep 120) still holds the CLI's stdio
  const closed = new Promise((r) => cli.child.on('exit', r));
  cli.child.kill('SIGKILL');
  await closed;
  // the kernel frees links and programs after the last fd closes (deferred fput, RCU): wait for it, never long
  for (let i = 0; i < 100 && (attachedBelow(root, progs).length || stillLoaded(progs).length); i++) await sleep(50);
  assert.deepEqual(namesOf(attachedTo(root), progs), [], 'bpftool cgroup show: nothing of the run attached to the cgroup root');
  assert.deepEqual(namesOf(attachedTo(cg), progs), [], 'nor to the workload\'s cgroup');
  assert.deepEqual(attachedBelow(root, progs), [], 'bpftool cgroup tree: none of the run\'s programs on any cgroup');
  assert.deepEqual(linksOf(progs), [], 'bpftool link show: no link of the egress programs');
  assert.deepEqual(stillLoaded(progs), [], 'bpftool prog show: the programs are gone');
});
