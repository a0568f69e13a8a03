/** Recipes with containers, run for real: the workload's own containers, and a selection joined with names at evaluation. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { readNdjson, tempDir, uniqueToken, type Event } from '../helpers/session.ts';
import { objectDir } from '../helpers/kernel.ts';
import { busyboxRootfs, containerName, containerSkip, podmanRunArgs } from '../helpers/containers.ts';

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
});
