/**
 * Enforcement ends with gadget-run, whatever way it ends: the cgroup programs
 * hang on bpf_links that only this process's file descriptors hold (never
 * pinned), so a SIGKILL of gadget-run leaves nothing attached to the
 * workload's cgroup and no egress program loaded — bpftool says so.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cgroup2Mount, destroyCgroup } from '../../src/runner/workload.ts';
import { gadgets } from '../../src/steps/index.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { cgroupsOf } from '../helpers/leaks.ts';
import { startCli, tempDir, writeRecipe } from '../runner/cli-helpers.ts';

/**
 * bpftool's JSON; while the kernel frees a program or a cgroup, bpftool can end its JSON early (it
 * lost the object between listing and describing it): ask again, for up to 5 s
 */
function bpftool(...args: string[]): unknown {
  let raw = '';
  for (let tries = 200; ; tries--) {
    try {
      raw = execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' });
      // nothing attached is an empty line, not []
      return JSON.parse(raw.trim() || '[]');
    } catch (err) {
      if (!(err instanceof SyntaxError) || tries <= 1) throw new Error(`bpftool ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? (err as Error).message} (it printed ${JSON.stringify(raw.slice(0, 300))})`, { cause: err });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    }
  }
}
/** the programs attached to the cgroup itself, by name; none once it is gone (another run's sweep may remove a SIGKILLed run's cgroup at any time) */
function attachedTo(dir: string): string[] {
  try {
    const shown = bpftool('cgroup', 'show', dir);
    // a cgroup being torn down can show as `null`: nothing attached
    if (shown === null) return [];
    if (!Array.isArray(shown)) throw new Error(`not a list: ${JSON.stringify(shown)}`);
    return shown.map((p: { name: string }) => p.name).sort();
  } catch (err) {
    if (!fs.existsSync(dir)) return [];
    throw err;
  }
}
/** every egress program attached anywhere in the cgroup v2 tree (bpftool cgroup tree) */
const attachedAnywhere = (): string[] => (bpftool('cgroup', 'tree', cgroup2Mount()) as { programs: { name: string }[] }[]).flatMap((c: { programs: { name: string }[] }) => c.programs.map((p) => p.name)).filter((n: string) => n.startsWith('egress_'));
/** ids of the loaded egress programs (bpf_prog names keep 15 bytes) */
const egressProgs = (): number[] => (bpftool('prog', 'show') as { name?: string; id: number }[]).filter((p: { name?: string }) => p.name?.startsWith('egress_')).map((p: { id: number }) => p.id);
/** ids of the links of those programs */
const egressLinks = (progs: number[]): number[] => (bpftool('link', 'show') as { prog_id: number; id: number }[]).filter((l: { prog_id: number }) => progs.includes(l.prog_id)).map((l: { id: number }) => l.id);

test('SIGKILL of gadget-run leaves no program attached to the workload\'s cgroup, no link, no egress program loaded', { skip: kernelSkip(gadgets['audit/egress']) }, async (t) => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'kill.yaml', 'name: egress-kill\nrun: sleep 120\negress:\n  mode: block\n  allow: [example.com]\n');
  const cli = startCli(['run', recipe, '--out', `${dir}/out`], { leaves: true });
  await cli.stderrUntil(/running: sleep 120/);
  const [cg] = cgroupsOf(cli.child.pid!);
  assert.ok(cg, 'the run made its workload cgroup');
  t.after(() => destroyCgroup(cg).catch(() => {}));
  const before = attachedTo(cg);
  assert.deepEqual(before, ['egress_connect4', 'egress_connect6', 'egress_dns', 'egress_sendmsg4', 'egress_sendmsg6'], 'attached while the run lives');
  const progs = egressProgs();
  assert.equal(egressLinks(progs).length, 5, 'five bpf_links hold them');
  assert.deepEqual(attachedAnywhere().sort(), before, 'bpftool cgroup tree sees them');

  // 'exit', not 'close': the orphaned workload (sleep 120) still holds the CLI's stdio
  const closed = new Promise((r) => cli.child.on('exit', r));
  cli.child.kill('SIGKILL');
  await closed;
  // the kernel frees links and programs after the last fd closes (deferred fput, RCU): wait for it, never long
  for (let i = 0; i < 100 && (attachedTo(cg).length || attachedAnywhere().length || egressProgs().some((id) => progs.includes(id))); i++) await sleep(50);
  assert.deepEqual(attachedTo(cg), [], 'bpftool cgroup show: nothing attached to the workload\'s cgroup');
  assert.deepEqual(attachedAnywhere(), [], 'bpftool cgroup tree: no egress program on any cgroup');
  assert.deepEqual(egressLinks(progs), [], 'bpftool link show: no link of the egress programs');
  assert.deepEqual(egressProgs().filter((id) => progs.includes(id)), [], 'bpftool prog show: the programs are gone');
});
