import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import type { ContainerRecord } from '../../src/containers/selection.ts';
import { defaultSources, type ContainerSource } from '../../src/containers/enrichment.ts';
import { busyboxRootfs, containerName, containerSkip, runContainer, startContainer } from '../helpers/containers.ts';
import { stepContext, traceAllWhile, uniqueToken, type Event } from '../helpers/session.ts';

const exec = gadgets['trace/exec'];
const open = gadgets['trace/open'];

function podmanExec(name: string, argv: string[]): void {
  execFileSync('podman', ['exec', name, ...argv], { stdio: 'ignore' });
}

const withArg = (events: Event[], token: string) => events.filter((e) => (e.args as string[]).includes(token));
const record = (records: ContainerRecord[] | undefined, id: string) => records?.find((r) => r.id === id);

describe('containers in the kernel', { skip: containerSkip() }, () => {
  test('a selection sees the exec and the open of its container and nothing of another one', async (t) => {
    const rootfs = busyboxRootfs(t);
    const a = startContainer(t, containerName('a'), rootfs, ['/bin/sleep', '60']);
    const b = startContainer(t, containerName('b'), rootfs, ['/bin/sleep', '60']);
    const token = uniqueToken();
    fs.writeFileSync(path.join(rootfs, 'tmp', token), 'x');
    const scope = { selection: { container: a.name }, workload: false };
    const [execs, opens] = await traceAllWhile(
      [[exec, { ...stepContext(t, { id: 'exec' }), containers: scope }], [open, { ...stepContext(t, { id: 'open' }), containers: scope }]],
      () => {
        podmanExec(a.name, ['/bin/cat', `/tmp/${token}`]);
        podmanExec(b.name, ['/bin/cat', `/tmp/${token}`]);
      },
    );
    const cats = withArg(execs.events, `/tmp/${token}`);
    assert.equal(cats.length, 1, `one cat seen, in ${a.name}: ${JSON.stringify(cats)}`);
    const aInfo = record(execs.outcome.containers, a.id);
    assert.ok(aInfo?.selected, `${a.name} is selected: ${JSON.stringify(execs.outcome.containers)}`);
    assert.equal(aInfo.name, a.name);
    assert.equal(aInfo.runtime, 'podman');
    assert.equal(String(cats[0].cgroup_id), aInfo.cgroupId, 'the exec came from the selected container');
    const bInfo = record(execs.outcome.containers, b.id);
    assert.equal(bInfo?.selected, false, `${b.name} is known and not selected`);
    // the other container cost no ring space: not one event from its cgroup
    for (const s of [execs, opens]) assert.deepEqual(s.events.filter((e) => String(e.cgroup_id) === bInfo.cgroupId), []);
    const opened = opens.events.filter((e) => e.path === `/tmp/${token}`);
    assert.equal(opened.length, 1, `one open of the token, in ${a.name}`);
    assert.equal(String(opened[0].cgroup_id), aInfo.cgroupId);
    assert.equal(opened[0].comm, 'cat');
  });

  test('a container started after attach is traced from its first exec; a non-matching one is resolved out', async (t) => {
    const rootfs = busyboxRootfs(t);
    const wanted = containerName('late');
    const other = containerName('other');
    const token = uniqueToken();
    const ctx = { ...stepContext(t), containers: { selection: { container: wanted }, workload: false } };
    const [traced] = await traceAllWhile([[exec, ctx]], async () => {
      assert.equal(await runContainer(wanted, rootfs, ['/bin/echo', token]), `${token}\n`);
      assert.equal(await runContainer(other, rootfs, ['/bin/echo', token]), `${token}\n`);
    });
    const first = withArg(traced.events, token);
    const mine = traced.outcome.containers?.find((c) => c.name === wanted);
    assert.ok(mine?.selected, `the late container is recorded as selected: ${JSON.stringify(traced.outcome.containers)}`);
    const entry = first.filter((e) => String(e.cgroup_id) === mine.cgroupId);
    assert.deepEqual(entry.map((e) => e.args), [['/bin/echo', token]], 'the entrypoint itself, its first exec');
    const theirs = traced.outcome.containers?.find((c) => c.name === other);
    assert.equal(theirs?.selected, false, 'the other late container was resolved and not selected');
  });

  test('a running container a source is still learning about at attach waits for it too, not rejected at once', async (t) => {
    // a pod created just before the step: its cgroup exists, its pod's labels are not known yet
    const rootfs = busyboxRootfs(t);
    const token = uniqueToken();
    const running = startContainer(t, containerName('known-later'), rootfs, ['/bin/sh', '-c', `while true; do /bin/echo ${token}; /bin/sleep 0.1; done`]);
    let told = false;
    const late: ContainerSource = {
      name: 'late',
      enrich(containers) {
        for (const c of containers) if (told && c.id === running.id) c.k8s = { ...c.k8s, labels: { team: 'late' } };
      },
      pending: (c) => !told && c.id === running.id,
    };
    const scope = { selection: { labels: { team: 'late' } }, workload: false, sources: [...defaultSources(), late] };
    const [traced] = await traceAllWhile([[exec, { ...stepContext(t), containers: scope }]], async () => {
      await new Promise((r) => setTimeout(r, 300));
      told = true;
      await new Promise((r) => setTimeout(r, 500));
    });
    const mine = record(traced.outcome.containers, running.id);
    assert.ok(mine?.selected, `selected once the source knew it: ${JSON.stringify(traced.outcome.containers)}`);
    const echoes = withArg(traced.events, token).filter((e) => String(e.cgroup_id) === mine.cgroupId);
    assert.ok(echoes.length > 0, 'its execs are traced');
  });

  test('a new container a source is still learning about waits for it: selected by what the source says later', async (t) => {
    // as a pod's labels reach the agent after the kernel saw its container's cgroup (src/containers/k8s-source.ts)
    const rootfs = busyboxRootfs(t);
    const wanted = containerName('told');
    const token = uniqueToken();
    let told = false;
    const late: ContainerSource = {
      name: 'late',
      enrich(containers) {
        for (const c of containers) if (told && c.name === wanted) c.k8s = { ...c.k8s, labels: { team: 'late' } };
      },
      pending: (c) => !told && c.runtime === 'podman',
    };
    const scope = { selection: { labels: { team: 'late' } }, workload: false, sources: [...defaultSources(), late] };
    const [traced] = await traceAllWhile([[exec, { ...stepContext(t), containers: scope }]], async () => {
      assert.equal(await runContainer(wanted, rootfs, ['/bin/echo', token]), `${token}\n`);
      // several tracker passes see it while the source does not know it yet
      await new Promise((r) => setTimeout(r, 300));
      told = true;
      await new Promise((r) => setTimeout(r, 300));
    });
    const mine = traced.outcome.containers?.find((c) => c.name === wanted);
    assert.ok(mine?.selected, `selected once the source knew it: ${JSON.stringify(traced.outcome.containers)}`);
    assert.deepEqual(withArg(traced.events, token).filter((e) => String(e.cgroup_id) === mine.cgroupId).map((e) => e.args), [['/bin/echo', token]]);
  });

  test('a node-wide step filters nothing and learns every container that starts, named while it ran, with no verdict', async (t) => {
    const rootfs = busyboxRootfs(t);
    const name = containerName('brief');
    const token = uniqueToken();
    const [traced] = await traceAllWhile([[exec, stepContext(t)]], async () => {
      assert.equal(await runContainer(name, rootfs, ['/bin/echo', token]), `${token}\n`);
    });
    const mine = traced.outcome.containers?.find((c) => c.name === name);
    assert.ok(mine, `the container that came and went is recorded: ${JSON.stringify(traced.outcome.containers)}`);
    assert.equal(mine.runtime, 'podman');
    assert.match(mine.id, /^[0-9a-f]{64}$/);
    assert.equal(mine.selected, undefined, 'a node-wide step judges no container');
    assert.deepEqual(withArg(traced.events, token).filter((e) => String(e.cgroup_id) === mine.cgroupId).map((e) => e.args), [['/bin/echo', token]]);
    // not a filter: the host's own execs are still there
    assert.ok(traced.events.some((e) => (e.args as string[])[0] === 'podman'), 'the podman command outside the container is traced too');
  });
});
