/** Recipes with containers, run for real: the workload's own containers, and a selection joined with names at evaluation. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { readNdjson, tempDir, uniqueToken, type Event } from '../helpers/session.ts';
import { objectDir } from '../helpers/kernel.ts';
import { busyboxRootfs, containerName, containerSkip, podmanRunArgs, runContainer } from '../helpers/containers.ts';
import { discoverCgroups } from '../../src/containers/discovery.ts';

const shellQuote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

async function run(t: Parameters<typeof tempDir>[0], yaml: string) {
  const out = tempDir(t, 'gadget-run-out-');
  const summary = await runRecipe(parseRecipe(yaml, 'containers.yaml'), { outDir: out, objectDir: objectDir(), log: () => {} });
  return { out, summary, events: (name: string): Event[] => readNdjson(path.join(out, name)) };
}

describe('recipes with containers', { skip: containerSkip() }, () => {
  test('run: podman run … sees the container’s own exec and open, with its id and name', async (t) => {
    const rootfs = busyboxRootfs(t);
    const name = containerName('workload');
    const token = uniqueToken();
    fs.writeFileSync(path.join(rootfs, 'tmp', token), 'x');
    const cmd = ['podman', ...podmanRunArgs(name, rootfs, ['/bin/cat', `/tmp/${token}`])].map(shellQuote).join(' ');
    const { summary, events, out } = await run(t, `name: workload-container
run: ${JSON.stringify(cmd)}
steps:
  - { id: exec, gadget: trace/exec, outputs: [exec.ndjson, exec.csv] }
  - { id: open, gadget: trace/open, outputs: [open.ndjson] }
`);
    assert.equal(summary.status, 'passed', JSON.stringify(summary));
    const cats = events('exec.ndjson').filter((e) => (e.args as string[])[1] === `/tmp/${token}`);
    assert.equal(cats.length, 1, 'the entrypoint exec inside the container is seen');
    assert.equal(cats[0].container_name, name);
    assert.equal(cats[0].runtime, 'podman');
    assert.match(String(cats[0].container_id), /^[0-9a-f]{64}$/);
    const podman = events('exec.ndjson').find((e) => (e.args as string[])[0] === 'podman');
    assert.ok(podman, 'the runtime’s own exec, in the workload cgroup, is seen too');
    assert.equal(podman.container_id, undefined, 'and is not attributed to a container');
    const opened = events('open.ndjson').filter((e) => e.path === `/tmp/${token}`);
    assert.equal(opened.length, 1);
    assert.equal(opened[0].container_id, cats[0].container_id);
    const header = fs.readFileSync(path.join(out, 'exec.csv'), 'utf8').split('\n')[0];
    assert.match(header, /,container_id,container_name,runtime,container_image/);
    const table = JSON.parse(fs.readFileSync(path.join(out, 'raw', 'containers.json'), 'utf8'));
    assert.ok(table.steps.exec.selected.includes(String(cats[0].cgroup_id)), 'the table says the step watched it');
  });

  test('containers: { workload: false } watches only the workload’s cgroup', async (t) => {
    const rootfs = busyboxRootfs(t);
    const token = uniqueToken();
    const cmd = ['podman', ...podmanRunArgs(containerName('nowl'), rootfs, ['/bin/echo', token])].map(shellQuote).join(' ');
    const { summary, events } = await run(t, `name: workload-only
run: ${JSON.stringify(cmd)}
containers: { workload: false }
steps:
  - { id: exec, gadget: trace/exec, outputs: [exec.ndjson] }
`);
    assert.equal(summary.status, 'passed', JSON.stringify(summary));
    const all = events('exec.ndjson');
    assert.ok(all.some((e) => (e.args as string[])[0] === 'podman'), 'the runtime’s exec is seen');
    assert.deepEqual(all.filter((e) => (e.args as string[])[1] === token), [], 'nothing from inside the container');
  });

  test('a node-wide run names a container that started and exited while it ran, and keeps it in raw/containers.json', async (t) => {
    const rootfs = busyboxRootfs(t);
    const name = containerName('short');
    const token = uniqueToken();
    fs.writeFileSync(path.join(rootfs, 'tmp', token), 'x');
    const out = tempDir(t, 'gadget-run-out-');
    const stop = new AbortController();
    let exited: Promise<string> | undefined;
    const summary = await runRecipe(parseRecipe(`name: node-wide
duration: 2m
steps:
  - { id: exec, gadget: trace/exec, outputs: [exec.ndjson] }
`, 'node-wide.yaml'), {
      outDir: out, objectDir: objectDir(), log: () => {}, signal: stop.signal,
      observer: {
        // the container starts once the step is attached, and the run ends once its cgroup is gone: at the end nothing on the node shows it
        attached: () => {
          const before = new Set(discoverCgroups().map((c) => c.cgroupId));
          const gone = () => discoverCgroups().every((c) => before.has(c.cgroupId));
          exited = runContainer(name, rootfs, ['/bin/sh', '-c', `/bin/cat /tmp/${token}; /bin/ls /; /bin/sleep 1`]).then(async (stdout) => {
            for (let i = 0; i < 100 && !gone(); i++) await new Promise((r) => setTimeout(r, 100));
            return stdout;
          }).finally(() => stop.abort());
        },
        captured: () => {},
      },
    });
    assert.ok(exited, 'the steps were attached');
    assert.match(await exited, /^x/, 'the container ran');
    assert.equal(summary.status, 'interrupted', JSON.stringify(summary));
    const table = JSON.parse(fs.readFileSync(path.join(out, 'raw', 'containers.json'), 'utf8'));
    const row = table.containers.find((c: { name?: string }) => c.name === name);
    assert.ok(row, `the exited container is in the table: ${JSON.stringify(table.containers.map((c: { name?: string }) => c.name))}`);
    assert.equal(row.runtime, 'podman');
    assert.ok(!discoverCgroups().some((c) => String(c.cgroupId) === row.cgroupId), 'its cgroup is gone: discovery at the end could not have named it');
    assert.deepEqual(table.steps, {}, 'a node-wide step selected and rejected nothing');
    const execs = readNdjson(path.join(out, 'exec.ndjson'));
    const inside = execs.filter((e) => String(e.cgroup_id) === row.cgroupId);
    // runc's own `runc init` execs in the container's cgroup too, before the entrypoint
    assert.deepEqual(inside.map((e) => (e.args as string[])[0]).filter((a) => a.startsWith('/bin/')).sort(), ['/bin/cat', '/bin/ls', '/bin/sh', '/bin/sleep'], JSON.stringify(inside));
    for (const e of inside) {
      assert.equal(e.container_name, name);
      assert.equal(e.container_id, row.id);
      assert.equal(e.runtime, 'podman');
    }
  });
});
