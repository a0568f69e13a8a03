import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { discoverCgroups, parseContainerCgroup } from '../../src/containers/discovery.ts';
import { containersStorageSource, enrich, podmanEventsSource, runcStateSource, type ContainerInfo } from '../../src/containers/enrichment.ts';
import { matchesSelection, scopeConstants, type ContainerSelection } from '../../src/containers/selection.ts';
import { buildTable, containerFields } from '../../src/containers/table.ts';

const ID = 'a91bad869dd812a63d4c072afd310711bda7eac270f9a8dc22d166c2ac22a9bd';
const ID2 = '0c8901b6101345a47899735ee6a165515334e0b98700812076b49b0270cae177';

test('cgroup paths of the runtimes, with both drivers, parse to id and runtime', () => {
  const table: [string, { id: string; runtime: string } | undefined][] = [
    // podman, cgroupfs driver (this machine) and systemd driver
    [`/libpod_parent/libpod-${ID}`, { id: ID, runtime: 'podman' }],
    [`/machine.slice/libpod-${ID}.scope`, { id: ID, runtime: 'podman' }],
    [`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`, { id: ID, runtime: 'podman' }],
    // podman's monitor is not the container
    [`/machine.slice/libpod-conmon-${ID}.scope`, undefined],
    // docker: systemd and cgroupfs
    [`/system.slice/docker-${ID}.scope`, { id: ID, runtime: 'docker' }],
    [`/docker/${ID}`, { id: ID, runtime: 'docker' }],
    // kubelet + containerd / CRI-O, systemd driver
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c_3d4e.slice/cri-containerd-${ID}.scope`, { id: ID, runtime: 'containerd' }],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod5f6a.slice/crio-${ID}.scope`, { id: ID, runtime: 'cri-o' }],
    // kubelet cgroupfs driver: a bare id under the pod (runtime not in the path)
    [`/kubepods/burstable/pod0f3e8a52-1d8c-4b62-9b1e-1f0c3a1d2e4f/${ID}`, { id: ID, runtime: 'unknown' }],
    [`/kubepods/pod0f3e8a52-1d8c-4b62-9b1e-1f0c3a1d2e4f/${ID}`, { id: ID, runtime: 'unknown' }],
    // not containers
    ['/', undefined],
    ['/system.slice/ssh.service', undefined],
    ['/kubepods.slice/kubepods-burstable.slice', undefined],
    [`/gadget-run/ci-${ID.slice(0, 63)}`, undefined],
    [`/x/foo-${ID}.scope`, undefined],
    [`/x/${ID.toUpperCase()}`, undefined],
    [`/libpod_parent/libpod-${ID}x`, undefined],
  ];
  for (const [p, want] of table) {
    const got = parseContainerCgroup(p);
    assert.deepEqual(got && { id: got.id, runtime: got.runtime }, want, p);
  }
});

test('discovery walks a cgroup tree and gives each container its directory inode as cgroup id', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-cgroot-'));
  try {
    fs.mkdirSync(path.join(root, 'libpod_parent', `libpod-${ID}`), { recursive: true });
    fs.mkdirSync(path.join(root, 'system.slice', `docker-${ID2}.scope`, 'nested'), { recursive: true });
    fs.mkdirSync(path.join(root, 'system.slice', 'cron.service'), { recursive: true });
    const found = discoverCgroups(root).sort((a, b) => a.path.localeCompare(b.path));
    assert.deepEqual(found.map((c) => [c.path, c.runtime]), [
      [`/libpod_parent/libpod-${ID}`, 'podman'],
      [`/system.slice/docker-${ID2}.scope`, 'docker'],
    ]);
    assert.equal(found[0].cgroupId, fs.statSync(path.join(root, 'libpod_parent', `libpod-${ID}`), { bigint: true }).ino);
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});

function info(over: Partial<ContainerInfo> = {}): ContainerInfo {
  return { id: ID, runtime: 'podman', cgroupId: '42', cgroupPath: `/libpod_parent/libpod-${ID}`, ...over };
}

test('sources: containers/storage names, runc state gives CRI Kubernetes fields, podman events name removed containers', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-sources-'));
  try {
    fs.mkdirSync(path.join(dir, 'storage', 'overlay-containers'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'storage', 'overlay-containers', 'containers.json'), JSON.stringify([
      { id: ID, names: ['web'], image: 'abc', metadata: JSON.stringify({ 'image-name': 'docker.io/library/nginx:1.25' }) },
    ]));
    fs.mkdirSync(path.join(dir, 'runc', ID2), { recursive: true });
    fs.writeFileSync(path.join(dir, 'runc', ID2, 'state.json'), JSON.stringify({ config: { labels: [
      'io.kubernetes.cri.sandbox-namespace=shop', 'io.kubernetes.cri.sandbox-name=cart-7d9', 'io.kubernetes.cri.container-name=cart',
      'io.kubernetes.cri.image-name=registry.local/cart:2', `bundle=/run/containerd/io.containerd.runtime.v2.task/k8s.io/${ID2}`,
    ] } }));
    const ID3 = 'f'.repeat(64);
    fs.writeFileSync(path.join(dir, 'events.log'), `{"ID":"${ID3}","Name":"gone","Status":"create","Image":"busybox","Type":"container"}\n`);
    const got = enrich([info(), info({ id: ID2, runtime: 'containerd', cgroupId: '43' }), info({ id: ID3, cgroupId: '44' })], [
      containersStorageSource(path.join(dir, 'storage')), runcStateSource([path.join(dir, 'runc')]), podmanEventsSource(path.join(dir, 'events.log')),
    ]);
    assert.equal(got[0].name, 'web');
    assert.equal(got[0].image, 'docker.io/library/nginx:1.25');
    assert.deepEqual(got[1].k8s, { namespace: 'shop', pod: 'cart-7d9', container: 'cart' });
    assert.equal(got[1].name, 'cart');
    assert.equal(got[1].image, 'registry.local/cart:2');
    assert.equal(got[1].labels?.bundle, undefined, 'runc’s own bundle label is not a container label');
    assert.equal(got[2].name, 'gone');
    assert.equal(got[2].image, 'busybox');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('selections match as Inspektor Gadget’s selector: every key given, labels all equal', () => {
  const c = info({ name: 'web', image: 'docker.io/library/nginx:1.25', k8s: { namespace: 'shop', pod: 'web-1', container: 'nginx', labels: { app: 'web', tier: 'front' } } });
  const yes: ContainerSelection[] = [{}, { container: 'web' }, { container: 'nginx' }, { container: ID.slice(0, 12) }, { image: 'nginx' }, { image: 'nginx:1.25' },
    { image: 'library/nginx' }, { runtime: 'podman' }, { namespace: 'shop', pod: 'web-1' }, { labels: { app: 'web' } }, { labels: { app: 'web', tier: 'front' } }];
  const no: ContainerSelection[] = [{ container: 'we' }, { container: ID.slice(0, 11) }, { image: 'ginx' }, { image: 'nginx:1.2' }, { runtime: 'docker' },
    { namespace: 'shop', pod: 'web-2' }, { labels: { app: 'web', tier: 'back' } }, { labels: { other: 'x' } }];
  for (const s of yes) assert.equal(matchesSelection(c, s), true, JSON.stringify(s));
  for (const s of no) assert.equal(matchesSelection(c, s), false, JSON.stringify(s));
});

test('scope constants: a workload-bound step without a scope loads no container program; a node-wide one learns new containers without filtering; a selection follows new containers; the workload follows its own', () => {
  assert.deepEqual(scopeConstants(undefined, true), { constants: { targ_containers: 0, targ_containers_new: 0, targ_containers_workload: 0 }, programs: [] });
  assert.deepEqual(scopeConstants(undefined, false), { constants: { targ_containers: 0, targ_containers_new: 1, targ_containers_workload: 0 }, programs: ['gadget_container_mkdir'] });
  assert.deepEqual(scopeConstants({ selection: { container: 'x' }, workload: false }, false).programs, ['gadget_container_mkdir']);
  assert.deepEqual(scopeConstants({ workload: true }, true), {
    constants: { targ_containers: 1, targ_containers_new: 0, targ_containers_workload: 1 },
    programs: ['gadget_container_mkdir', 'gadget_container_fork', 'gadget_container_exit'],
  });
});

test('the table merges discovery with what steps recorded, and names the fields events gain', () => {
  const t = buildTable([info({ cgroupId: '1', name: 'old' })], { a: [{ ...info({ cgroupId: '1', name: 'web', cgroupPath: '' }), selected: true }, { ...info({ cgroupId: '2' }), selected: false }], b: undefined });
  assert.deepEqual(t.steps, { a: { selected: ['1'], rejected: ['2'] } });
  assert.equal(t.containers.find((c) => c.cgroupId === '1')?.name, 'web');
  assert.equal(t.containers.find((c) => c.cgroupId === '1')?.cgroupPath, `/libpod_parent/libpod-${ID}`, 'a path discovery knew is kept');
  assert.deepEqual(Object.keys(containerFields(info({ k8s: { namespace: 'n', pod: 'p' } }))), ['container_id', 'container_name', 'runtime', 'container_image', 'namespace', 'pod']);
});

test('a node-wide step\'s records keep containers that are gone by the end in the table, and judge none', () => {
  const t = buildTable([info({ cgroupId: '1', name: 'still-running' })], { a: [info({ cgroupId: '3', name: 'came-and-went', cgroupPath: '' })] });
  assert.deepEqual(t.containers.map((c) => [c.cgroupId, c.name]), [['1', 'still-running'], ['3', 'came-and-went']]);
  assert.deepEqual(t.steps, {}, 'no verdict: a node-wide step selected nothing and rejected nothing');
});
