import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { bitmapNumbers, profileFor, seccompProfileObject, type SeccompProfile } from '../../src/steps/advise/seccomp-profile.ts';
import { gadgets } from '../../src/steps/index.ts';
import { SYSCALLS_X86_64 } from '../../src/steps/names/syscalls-x86_64.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { freshCgroup, run } from '../helpers/proc.ts';
import { stepContext, tempDir, traceWhile, uniqueToken } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['advise/seccomp-profile'];

test('the x86-64 table names the syscalls by their numbers (unistd_64.h)', () => {
  assert.deepEqual([0, 1, 59, 257].map((nr) => SYSCALLS_X86_64[nr]), ['read', 'write', 'execve', 'openat']);
});

test('a bitmap decodes to the numbers of its set bits, and the profile names them sorted, with execve', () => {
  const bitmap = Buffer.alloc(64);
  for (const nr of [1, 0, 257, 63, 64]) bitmap[nr >> 3] |= 1 << (nr & 7);
  assert.deepEqual(bitmapNumbers(bitmap), [0, 1, 63, 64, 257]);
  const { profile, unnamed } = profileFor([...bitmapNumbers(bitmap), 511]);
  assert.deepEqual(profile, {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [{ names: ['execve', 'openat', 'read', 'semget', 'uname', 'write'], action: 'SCMP_ACT_ALLOW' }],
  });
  assert.deepEqual(unnamed, [511]);
});

test('a pod gets a security-profiles-operator SeccompProfile with the same rules', () => {
  const { profile } = profileFor([0, 1]);
  const obj = seccompProfileObject(profile, { namespace: 'ci', pod: 'job-1' });
  assert.equal(obj.apiVersion, 'security-profiles-operator.x-k8s.io/v1beta1');
  assert.equal(obj.kind, 'SeccompProfile');
  assert.deepEqual(obj.metadata, { name: 'job-1', namespace: 'ci', annotations: { 'gadget-run/generated-by': 'advise/seccomp-profile' } });
  assert.deepEqual(obj.spec, { defaultAction: profile.defaultAction, architectures: profile.architectures, syscalls: profile.syscalls });
});

describe('advise/seccomp-profile', { skip: kernelSkip(def) }, () => {
  test('the profile recorded from a workload runs it again, and refuses a syscall it never made with EPERM', async (t) => {
    const workload = compileFixture(t, 'seccomp_workload');
    const loader = compileFixture(t, 'seccomp_run', ['-lseccomp']);
    const dir = tempDir(t);
    const cg = freshCgroup(t, uniqueToken('cg'));
    const { outcome, events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level } }), async () => {
      const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3"', 'sh', cg.dir, workload, path.join(dir, 'recorded')]);
      assert.equal(r.code, 0);
    });
    assert.equal(outcome.lost, 0);
    assert.equal(events.length, 1);
    const profile = events[0] as SeccompProfile;
    const names = profile.syscalls[0].names;
    assert.deepEqual(names, [...names].sort());
    for (const n of ['execve', 'openat', 'write', 'pread64', 'close', 'exit_group']) assert.ok(names.includes(n), `${n} in ${names.join(',')}`);
    // the shell's own steps before its exec (writing cgroup.procs) are not the workload's; nor is sysinfo
    assert.ok(!names.includes('sysinfo') && !names.includes('wait4'), names.join(','));
    const file = path.join(dir, 'seccomp.json');
    fs.writeFileSync(file, JSON.stringify(profile));

    const again = await run(loader, [file, workload, path.join(dir, 'again')]);
    assert.deepEqual([again.code, again.stdout], [0, 'read seccomp\n']);
    const extra = await run(loader, [file, workload, path.join(dir, 'extra'), 'extra']);
    assert.deepEqual([extra.code, extra.stdout], [0, 'read seccomp\nsysinfo Operation not permitted\n']);
  });
});
