/** for_each keys from containers (no root): a key's parts, and the live lookup a trigger uses (each new cgroup looked up once, a pending one again). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerInfo, ContainerSource } from '../../src/containers/enrichment.ts';
import { CONTAINER_KEYS, containerFields, containerKey } from '../../src/containers/table.ts';
import { liveContainers } from '../../src/runner/containers.ts';

const pod: ContainerInfo = {
  id: 'a'.repeat(64), runtime: 'containerd', cgroupId: '11', cgroupPath: '/kubepods/x',
  name: 'app', image: 'web:1', k8s: { node: 'n1', namespace: 'prod', pod: 'web-1', container: 'app', owner: 'Deployment/web' },
};

test('every for_each key is a field the enrich stage gives events', () => {
  const fields = Object.keys(containerFields(pod));
  for (const k of CONTAINER_KEYS) assert.ok(fields.includes(k), k);
});

test('a key names its container uniquely: pod with its namespace, container with its pod; absent parts give no key', () => {
  assert.deepEqual(containerKey(pod, 'pod'), { key: 'prod/web-1', fields: { namespace: 'prod', pod: 'web-1' } });
  assert.deepEqual(containerKey(pod, 'container'), { key: 'prod/web-1/app', fields: { namespace: 'prod', pod: 'web-1', container: 'app' } });
  assert.deepEqual(containerKey(pod, 'container_name'), { key: 'app', fields: { container_name: 'app' } });
  const podman: ContainerInfo = { id: 'b'.repeat(64), runtime: 'podman', cgroupId: '12', cgroupPath: '/libpod_parent/libpod-x', name: 'db' };
  assert.equal(containerKey(podman, 'pod'), undefined, 'a podman container has no pod');
  assert.deepEqual(containerKey(podman, 'runtime'), { key: 'podman', fields: { runtime: 'podman' } });
});

test('liveContainers: a new cgroup walks the tree once; a host cgroup is remembered as none; a pending container is asked again', () => {
  let walks = 0;
  let known = false;
  const source: ContainerSource = {
    name: 'test',
    enrich(cs) {
      for (const c of cs) if (known) c.k8s = { namespace: 'prod', pod: 'web-1' };
    },
    pending: (c) => !c.k8s,
  };
  const lookup = liveContainers([source], () => (walks++, [{ id: pod.id, runtime: 'containerd', cgroupId: '11', cgroupPath: '/kubepods/x' }]));
  assert.equal(lookup('99'), undefined, 'not a container');
  assert.equal(lookup('99'), undefined);
  assert.equal(walks, 1, 'a cgroup that is no container is not looked for again');
  assert.equal(lookup('11')?.k8s, undefined, 'found, its pod not known yet');
  known = true;
  assert.equal(lookup('11')?.k8s?.pod, 'web-1', 'pending: asked again');
  const before = walks;
  assert.equal(lookup('11')?.k8s?.pod, 'web-1');
  assert.equal(walks, before, 'known now: no walk');
});
