/**
 * advise/seccomp-profile's SeccompProfile object against a real API server:
 * the test cluster has no security-profiles-operator, so the test registers
 * the SeccompProfile CRD written from the operator's API types
 * (test/helpers/spo-seccompprofile.ts) for its own run, dry-runs a
 * server-side apply of the generated object, and removes the CRD after.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { profileFor, seccompDocuments } from '../../src/steps/advise/seccomp-profile.ts';
import { seccompProfileCrd } from '../helpers/spo-seccompprofile.ts';
import { kubectl, skipK8s, useCluster, type Cluster } from './cluster.ts';

const CRD = seccompProfileCrd();
const CRD_NAME = (CRD.metadata as { name: string }).name;

describe('SeccompProfile objects on the API server', { skip: skipK8s, timeout: 600_000 }, () => {
  let cluster: Cluster | undefined;
  before(async () => {
    cluster = await useCluster();
    const created = await kubectl(['apply', '--server-side', '--field-manager=gadget-run-test', '-f', '-'], JSON.stringify(CRD));
    assert.equal(created.code, 0, created.stderr);
    const ready = await kubectl(['wait', '--for=condition=established', `crd/${CRD_NAME}`, '--timeout=60s']);
    assert.equal(ready.code, 0, ready.stderr);
  });
  after(async () => {
    await kubectl(['delete', 'crd', CRD_NAME, '--ignore-not-found', '--wait=true']);
    await cluster?.stop();
  });

  const dryRun = (yamlText: string) => kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=gadget-run-test', '-f', '-', '-o', 'json'], yamlText);

  test('the generated object for a pod is accepted as it is (server-side apply, dry run)', async () => {
    const { profile } = profileFor([0, 1, 3, 60, 231, 257]);
    const table = { containers: [{ id: 'c'.repeat(64), runtime: 'containerd' as const, cgroupId: '7', cgroupPath: '/kubepods/job-1', k8s: { namespace: 'default', pod: 'job-1', container: 'main', labels: {} } }], steps: {} };
    const [obj] = seccompDocuments([{ ...profile, cgroups: ['7'] }], table, { params: { document: 'SeccompProfile' }, recipe: 'r' });
    const r = await dryRun(stringify(obj));
    assert.equal(r.code, 0, r.stderr);
    // what the server would store: the spec unpruned (every field is one the API has), in the pod's namespace
    const stored = JSON.parse(r.stdout);
    assert.deepEqual([stored.metadata.namespace, stored.metadata.name, stored.spec], ['default', 'job-1', obj.spec]);
  });

  test('the check can fail: the same server refuses an action the API does not know', async () => {
    const { profile } = profileFor([0]);
    const [obj] = seccompDocuments([{ ...profile, cgroups: [] }], undefined, { params: { document: 'SeccompProfile' }, recipe: 'broken' });
    const r = await dryRun(stringify({ ...obj, metadata: { ...(obj.metadata as object), namespace: 'default' }, spec: { ...(obj.spec as object), defaultAction: 'SCMP_ACT_EPERM' } }));
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /defaultAction/);
  });
});
