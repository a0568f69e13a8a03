/**
 * The Kubernetes source without a cluster: pods as the API server sends
 * them, containers as discovery finds them on a kubelet's node.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { containerIdOf, PodIndex, podUidOf, topOwner, type OwnerRef, type PodView } from '../../src/containers/k8s-source.ts';
import type { ContainerInfo } from '../../src/containers/enrichment.ts';
import { matchesSelection } from '../../src/containers/selection.ts';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);
const ID_PAUSE = 'c'.repeat(64);
const UID = '0d5c6a0e-3b1f-4c2a-9e1d-6f7a8b9c0d1e';

const pod = (over: Partial<PodView['status']> = {}, owners?: OwnerRef[]): PodView => ({
  metadata: { uid: UID, name: 'web-7d4b9-xk2p', namespace: 'shop', labels: { app: 'web', tier: 'front' }, ownerReferences: owners },
  spec: { nodeName: 'node-1', containers: [{ name: 'nginx' }, { name: 'sidecar' }] },
  status: { podIP: '10.0.0.7', podIPs: [{ ip: '10.0.0.7' }, { ip: 'fd00::7' }], containerStatuses: [{ name: 'nginx', containerID: `containerd://${ID_A}` }], ...over },
});

const container = (id: string, cgroupPath: string, extra: Partial<ContainerInfo> = {}): ContainerInfo => ({ id, runtime: 'unknown', cgroupId: '1', cgroupPath, ...extra });

test('a container status containerID names the container id, whatever the runtime; anything else names none', () => {
  assert.equal(containerIdOf(`containerd://${ID_A}`), ID_A);
  assert.equal(containerIdOf(`cri-o://${ID_A}`), ID_A);
  assert.equal(containerIdOf(`docker://${ID_A}`), ID_A);
  assert.equal(containerIdOf(undefined), undefined);
  assert.equal(containerIdOf(''), undefined, 'a container not started yet has no containerID');
  assert.equal(containerIdOf(`containerd://${ID_A.slice(1)}`), undefined);
});

test('the pod UID comes from the cgroup parent, with both kubelet cgroup drivers', () => {
  assert.equal(podUidOf(`/kubepods/besteffort/pod${UID}/${ID_A}`), UID);
  assert.equal(podUidOf(`/kubepods/pod${UID}/${ID_A}`), UID, 'Guaranteed pods sit right under kubepods');
  const systemd = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replaceAll('-', '_')}.slice/cri-containerd-${ID_A}.scope`;
  assert.equal(podUidOf(systemd), UID);
  assert.equal(podUidOf(`/machine.slice/libpod-${ID_A}.scope`), undefined);
  assert.equal(podUidOf(''), undefined, 'a container gone before it was looked at has no path');
});

test('the top owner: ReplicaSet → Deployment when the agent may read the ReplicaSet; the direct owner when it may not', async () => {
  const rs: OwnerRef = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9', controller: true };
  const p = pod({}, [rs]);
  const asked: string[] = [];
  const allowed = async (ref: OwnerRef, ns: string) => {
    asked.push(`${ns}/${ref.kind}/${ref.name}`);
    return [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', controller: true }];
  };
  assert.equal(await topOwner(p, allowed), 'Deployment/web');
  assert.deepEqual(asked, ['shop/ReplicaSet/web-7d4b9'], 'only the ReplicaSet is read: a Deployment is a top owner');
  const forbidden = async () => {
    throw Object.assign(new Error('replicasets.apps "web-7d4b9" is forbidden'), { code: 403 });
  };
  assert.equal(await topOwner(p, forbidden), 'ReplicaSet/web-7d4b9');
  // a bare ReplicaSet (no owner) is its own top owner
  assert.equal(await topOwner(p, async () => []), 'ReplicaSet/web-7d4b9');
  // Job → CronJob; a StatefulSet's pod is not walked (nothing to read)
  const job = pod({}, [{ apiVersion: 'batch/v1', kind: 'Job', name: 'nightly-27', controller: true }]);
  assert.equal(await topOwner(job, async () => [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', controller: true }]), 'CronJob/nightly');
  const sts = pod({}, [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', controller: true }]);
  assert.equal(await topOwner(sts, async () => assert.fail('a StatefulSet is not read')), 'StatefulSet/db');
  assert.equal(await topOwner(pod(), allowed), undefined, 'a bare pod has no owner');
  // the controller reference, not the first one
  const two = pod({}, [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x' }, { ...rs }]);
  assert.equal(await topOwner(two, forbidden), 'ReplicaSet/web-7d4b9');
  // an ownership loop ends
  let n = 0;
  assert.equal(await topOwner(p, async () => (n++, [rs])), 'ReplicaSet/web-7d4b9');
  assert.equal(n, 4);
});

test('the source: a pod’s containers gain node, namespace, pod, container, labels, owner and ips; its sandbox and other cgroups do not', () => {
  const index = new PodIndex('node-1');
  index.set(pod({}, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9', controller: true }]));
  const byId = container(ID_A, `/kubepods/besteffort/pod${UID}/${ID_A}`);
  // started after the pod's last status: known by its cgroup parent and the CRI's annotation
  const byUid = container(ID_B, `/kubepods/besteffort/pod${UID}/${ID_B}`, { k8s: { container: 'sidecar' } });
  const pause = container(ID_PAUSE, `/kubepods/besteffort/pod${UID}/${ID_PAUSE}`, { labels: { 'io.kubernetes.cri.container-type': 'sandbox' } });
  const podman = container('d'.repeat(64), `/machine.slice/libpod-${'d'.repeat(64)}.scope`, { name: 'web' });
  const source = index.source();
  source.enrich([byId, byUid, pause, podman]);
  assert.deepEqual(byId.k8s, {
    node: 'node-1', namespace: 'shop', pod: 'web-7d4b9-xk2p', container: 'nginx', labels: { app: 'web', tier: 'front' }, owner: 'ReplicaSet/web-7d4b9', ips: ['10.0.0.7', 'fd00::7'],
  });
  assert.equal(byId.name, 'nginx');
  assert.equal(byUid.k8s?.container, 'sidecar');
  assert.equal(byUid.k8s?.pod, 'web-7d4b9-xk2p');
  assert.equal(pause.k8s, undefined, 'the sandbox is not one of the pod’s containers');
  assert.equal(podman.k8s, undefined);
  // the owner walk's answer replaces the direct owner
  index.setOwner(UID, 'Deployment/web');
  const again = container(ID_A, `/kubepods/besteffort/pod${UID}/${ID_A}`);
  source.enrich([again]);
  assert.equal(again.k8s?.owner, 'Deployment/web');
  // selections on Kubernetes keys (IG's semantics) match on these fields
  assert.ok(matchesSelection(byId, { namespace: 'shop', labels: { app: 'web' } }));
  assert.ok(matchesSelection(byId, { pod: 'web-7d4b9-xk2p', container: 'nginx' }));
  assert.ok(!matchesSelection(byUid, { container: 'nginx' }));
  assert.ok(!matchesSelection(pause, { namespace: 'shop' }));
  assert.ok(!matchesSelection(byId, { labels: { app: 'web', tier: 'back' } }));
});

test('pending: a container in a pod cgroup waits for its pod and its name; nothing else waits', () => {
  const index = new PodIndex('node-1');
  const source = index.source();
  const early = container(ID_B, `/kubepods/besteffort/pod${UID}/${ID_B}`);
  assert.equal(source.pending!(early), true, 'the pod’s watch event is behind');
  index.set(pod());
  assert.equal(source.pending!(early), true, 'the pod is known, the container’s name not yet');
  assert.equal(source.pending!({ ...early, k8s: { container: 'sidecar' } }), false, 'the CRI annotation names it');
  index.set(pod({ containerStatuses: [{ name: 'sidecar', containerID: `containerd://${ID_B}` }] }));
  assert.equal(source.pending!(early), false, 'the pod’s status names it');
  assert.equal(source.pending!(container(ID_PAUSE, `/kubepods/besteffort/pod${UID}/${ID_PAUSE}`, { labels: { 'io.kubernetes.cri.container-type': 'sandbox' } })), false);
  assert.equal(source.pending!(container(ID_A, `/machine.slice/libpod-${ID_A}.scope`)), false);
  assert.equal(source.pending!(container(ID_A, '')), false, 'a container gone before it was looked at is judged at once');
  // a deleted pod's containers are still named by id (a step's last pass)
  index.delete(pod());
  const late = container(ID_B, '');
  source.enrich([late]);
  assert.equal(late.k8s?.pod, 'web-7d4b9-xk2p');
});
