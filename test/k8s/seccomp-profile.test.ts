/**
 * advise/seccomp-profile's SeccompProfile object against a real API server:
 * the test cluster has no security-profiles-operator, so the test registers
 * the SeccompProfile CRD written from the operator's API types
 * (test/helpers/spo-seccompprofile.ts) for its own run, dry-runs a
 * server-side apply of the generated object, and removes the CRD after.
 * And from a live pod: `run --cluster -l` records the selected pod's
 * syscalls only, and names the object after it, in its namespace.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { safeNodeDir } from '../../src/k8s/results.ts';
import { profileFor, seccompDocuments } from '../../src/gadgets/advise/seccomp-profile/recorder.ts';
import { seccompProfileCrd } from '../helpers/spo-seccompprofile.ts';
import { clusterRun, clusterSuite, kubectl, NODE, nodePod, skipK8s, startPods } from './cluster.ts';

const CRD = seccompProfileCrd();
const CRD_NAME = (CRD.metadata as { name: string }).name;
const NS = 'default';
const MARK = `sp${process.pid}`;
const POD = `sp-target-${process.pid}`;

describe('SeccompProfile objects on the API server', { skip: skipK8s, timeout: 600_000 }, () => {
  // the operator's CRD (its v1beta1 types) and a pod to profile, beside the DaemonSet; both removed before the undeploy
  clusterSuite({
    deploy: true,
    setup: async (cluster) => {
      const created = await kubectl(['apply', '--server-side', '--field-manager=gadget-run-test', '-f', '-'], JSON.stringify(CRD));
      assert.equal(created.code, 0, created.stderr);
      const ready = await kubectl(['wait', '--for=condition=established', `crd/${CRD_NAME}`, '--timeout=60s']);
      assert.equal(ready.code, 0, ready.stderr);
      // a pod that stats a file ten times a second: newfstatat/statx, never bpf()
      await startPods([nodePod(cluster.image, POD, NS, { app: 'sp-target', 'sp-test': MARK }, "setInterval(()=>require('fs').statSync('/'),100)")], NS, `sp-test=${MARK}`);
    },
    cleanup: async () => {
      await kubectl(['-n', NS, 'delete', 'pod', POD, '--grace-period=0', '--wait=false']);
      await kubectl(['delete', 'crd', CRD_NAME, '--ignore-not-found', '--wait=true']);
    },
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

  test('a live pod selected by its labels: the object is named after it, in its namespace, with its syscalls and not the node\'s; the API server accepts it', { timeout: 400_000 }, async () => {
    const { out, ...r } = await clusterRun('name: sp-pod\nduration: 4s\nsteps:\n  - id: profile\n    gadget: advise/seccomp-profile\n    params: {document: SeccompProfile}\n    outputs: [profile.yaml]\n', ['-l', `sp-test=${MARK}`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    for (const where of [path.join(out, safeNodeDir(NODE)), out]) {
      const text = fs.readFileSync(path.join(where, 'profile.yaml'), 'utf8');
      const obj = parse(text) as { kind: string; metadata: { name: string; namespace?: string }; spec: { syscalls: { names: string[] }[] } };
      assert.equal(obj.kind, 'SeccompProfile', where);
      assert.deepEqual([obj.metadata.name, obj.metadata.namespace], [POD, NS], `${where}: named after the pod`);
      const names = obj.spec.syscalls[0].names;
      assert.ok(names.includes('statx') || names.includes('newfstatat'), `${where}: the pod's stat calls: ${names.join(' ')}`);
      // the agent itself made bpf() all along (loading, reading maps): recorded only when the capture was the node's
      assert.ok(!names.includes('bpf'), `${where}: the node's syscalls are not the pod's: ${names.join(' ')}`);
    }
    const dry = await dryRun(fs.readFileSync(path.join(out, 'profile.yaml'), 'utf8'));
    assert.equal(dry.code, 0, dry.stderr);
    const stored = JSON.parse(dry.stdout);
    assert.deepEqual([stored.metadata.namespace, stored.metadata.name], [NS, POD]);
  });
});
