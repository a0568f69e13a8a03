import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import type { ContainerTable } from '../../src/containers/table.ts';
import { bitmapNumbers, profileFor, seccompDocuments, type SeccompProfile } from '../../src/gadgets/advise/seccomp-profile/recorder.ts';
import { launcherArgv, loadSeccompProfile } from '../../src/runner/seccomp.ts';
import { gadgets } from '../../src/steps/index.ts';
import { SYSCALLS_X86_64 } from '../../src/steps/names/syscalls-x86_64.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { freshCgroup, run } from '../helpers/proc.ts';
import { stepContext, tempDir, traceWhile, uniqueToken } from '../helpers/session.ts';
import { SECCOMP_PROFILE_SCHEMA } from '../helpers/spo-seccompprofile.ts';
import { runCli, writeRecipe } from '../runner/cli-helpers.ts';

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

// what the recorded row holds besides the profile: the cgroups that made the syscalls
const container = (cgroupId: string, namespace: string, pod: string, owner?: string) => ({
  id: cgroupId.padStart(64, 'c'), runtime: 'containerd' as const, cgroupId, cgroupPath: `/kubepods/${pod}`,
  k8s: { namespace, pod, container: 'main', labels: {}, ...(owner ? { owner } : {}) },
});
const TABLE = {
  containers: [container('11', 'ci', 'job-1'), container('12', 'ci', 'job-1'), container('21', 'web', 'web-6d9f-a', 'Deployment/web'), container('22', 'web', 'web-6d9f-b', 'Deployment/web'), container('31', 'db', 'db-0')],
  steps: {},
} satisfies ContainerTable;
const validSpo = new Ajv({ allErrors: true, strict: false }).compile(SECCOMP_PROFILE_SCHEMA);

/** the SeccompProfile object against the OCI profile, field by field, and against the API's schema */
function assertCarries(obj: Record<string, unknown>, profile: SeccompProfile, metadata: Record<string, unknown>) {
  assert.equal(obj.apiVersion, 'security-profiles-operator.x-k8s.io/v1beta1');
  assert.equal(obj.kind, 'SeccompProfile');
  assert.deepEqual(obj.metadata, { ...metadata, annotations: { 'gadget-run/generated-by': 'advise/seccomp-profile' } });
  const spec = obj.spec as SeccompProfile;
  assert.deepEqual(Object.keys(spec), ['defaultAction', 'architectures', 'syscalls']);
  assert.equal(spec.defaultAction, profile.defaultAction);
  assert.deepEqual(spec.architectures, profile.architectures);
  assert.deepEqual(spec.syscalls, profile.syscalls);
  assert.equal(validSpo(obj), true, JSON.stringify(validSpo.errors));
}

describe('the SeccompProfile document (recorded rows, no root)', () => {
  const { profile } = profileFor([0, 1, 257]);
  const row = (cgroups: string[]) => ({ ...profile, cgroups });
  const docs = (params: Record<string, unknown>, cgroups: string[], recipe = 'ci-profile') => seccompDocuments([row(cgroups)], TABLE, { params, recipe });

  test('document oci (the default): the OCI profile itself, without the cgroups', () => {
    assert.deepEqual(docs({}, ['11']), [profile]);
    assert.deepEqual(docs({ document: 'oci' }, ['11']), [profile]);
  });

  test('one pod (all its containers): named after it, in its namespace; the spec is the OCI profile', () => {
    const [obj] = docs({ document: 'SeccompProfile' }, ['11', '12']);
    assertCarries(obj, profile, { name: 'job-1', namespace: 'ci' });
  });

  test('pods of one owner: the owner\'s name; pods of several, or a cgroup outside any pod: the recipe\'s', () => {
    assertCarries(docs({ document: 'SeccompProfile' }, ['21', '22'])[0], profile, { name: 'web', namespace: 'web' });
    assertCarries(docs({ document: 'SeccompProfile' }, ['21', '31'], 'Nightly CI_profile')[0], profile, { name: 'nightly-ci-profile' });
    // the workload's own cgroup (no pod) made syscalls too: no pod's profile, and no namespace to claim
    assertCarries(docs({ document: 'SeccompProfile' }, ['11', '999'])[0], profile, { name: 'ci-profile' });
    assertCarries(seccompDocuments([row(['11'])], undefined, { params: { document: 'SeccompProfile' }, recipe: 'r' })[0], profile, { name: 'r' });
  });

  test('the schema check can fail: a field the API does not have, an action it does not know', () => {
    const [obj] = docs({ document: 'SeccompProfile' }, ['11']);
    assert.equal(validSpo({ ...obj, spec: { ...(obj.spec as object), syscall: [] } }), false);
    assert.equal(validSpo({ ...obj, spec: { ...(obj.spec as object), defaultAction: 'SCMP_ACT_EPERM' } }), false);
  });

  test('the step\'s document fields follow params.document (what assertions and transforms may read)', () => {
    assert.deepEqual(def.advise!.fields({}), ['defaultAction', 'architectures', 'syscalls']);
    assert.deepEqual(def.advise!.fields({ document: 'SeccompProfile' }), ['apiVersion', 'kind', 'metadata', 'spec']);
  });
});

describe('advise/seccomp-profile', { skip: kernelSkip(def) }, () => {
  test('the profile recorded from a workload runs it again, and refuses a syscall it never made with EPERM', async (t) => {
    const workload = compileFixture(t, 'seccomp_workload');
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
    // the document a .json output holds: the profile without the recorded cgroups
    const { cgroups: _, ...document } = profile;
    fs.writeFileSync(file, JSON.stringify(document));

    // under the profile as a recipe's seccomp: applies it (the launcher: src/runner/seccomp.ts)
    const [launcher, ...args] = launcherArgv(loadSeccompProfile(path.join(dir, 'recipe.yaml'), { profile: 'seccomp.json', mode: 'errno' }));
    const again = await run(launcher, [...args, workload, path.join(dir, 'again')]);
    assert.deepEqual([again.code, again.stdout], [0, 'read seccomp\n']);
    const extra = await run(launcher, [...args, workload, path.join(dir, 'extra'), 'extra']);
    assert.deepEqual([extra.code, extra.stdout], [0, 'read seccomp\nsysinfo Operation not permitted\n']);
  });

  test('params.cgroups: 1 and a second cgroup of the workload: its syscalls are not in the profile, counted as lost, with a warning', async (t) => {
    const workload = compileFixture(t, 'seccomp_workload');
    const dir = tempDir(t);
    // the nested cgroup is removed before its parent (t.after runs in registration order)
    let sub = '';
    t.after(() => fs.rmdirSync(sub));
    const cg = freshCgroup(t, uniqueToken('cg'));
    sub = path.join(cg.dir, 'second');
    fs.mkdirSync(sub);
    const { outcome, events } = await traceWhile(def, stepContext(t, { cgroup: { id: cg.id, level: cg.level }, params: { cgroups: 1 } }), async () => {
      for (const [where, extra] of [[cg.dir, []], [sub, ['extra']]] as const) {
        const r = await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3" $4', 'sh', where, workload, path.join(dir, path.basename(where)), ...extra]);
        assert.equal(r.code, 0);
      }
    });
    assert.equal(outcome.lost, 1, 'the second cgroup\'s exec found the map full');
    assert.deepEqual(outcome.warnings, ['more than 1 cgroups made syscalls: 1 times a cgroup\'s recording could not start, so the profile lacks what those cgroups made (raise params.cgroups)']);
    const names = (events[0] as SeccompProfile).syscalls[0].names;
    assert.ok(names.includes('pread64') && !names.includes('sysinfo'), `the first cgroup's syscalls, not the second's sysinfo: ${names.join(',')}`);
    assert.deepEqual(events[0].cgroups, [String(cg.id)]);
  });

  test('a recipe asks for both documents: the SeccompProfile\'s spec is the OCI profile of the same run, field by field', async (t) => {
    const workload = compileFixture(t, 'seccomp_workload');
    const dir = tempDir(t);
    const recipe = writeRecipe(dir, 'seccomp.yaml', `name: seccomp-both
run: ${JSON.stringify(`${workload} ${path.join(dir, 'recorded')}`)}
timeout: 1m
steps:
  - id: oci
    gadget: advise/seccomp-profile
    outputs: [seccomp.json]
  - id: spo
    gadget: advise/seccomp-profile
    params: { document: SeccompProfile }
    outputs: [seccompprofile.yaml]
assertions:
  - name: the object allows what the profile allows
    expr: "steps.spo.spec.syscalls[0].names = steps.oci.syscalls[0].names"
`);
    const out = path.join(dir, 'out');
    const r = await runCli(['run', recipe, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const oci = JSON.parse(fs.readFileSync(path.join(out, 'seccomp.json'), 'utf8')) as SeccompProfile;
    assert.deepEqual(Object.keys(oci), ['defaultAction', 'architectures', 'syscalls'], 'the .json output is the OCI profile alone');
    assert.ok(oci.syscalls[0].names.includes('pread64'), oci.syscalls[0].names.join(','));
    const docs = parseAllDocuments(fs.readFileSync(path.join(out, 'seccompprofile.yaml'), 'utf8')).map((d) => d.toJS());
    assert.equal(docs.length, 1);
    // outside Kubernetes: named after the recipe, no namespace (kubectl -n chooses)
    assertCarries(docs[0], oci, { name: 'seccomp-both' });
  });
});
