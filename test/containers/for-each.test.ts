/**
 * for_each on a container field, against real podman containers: a trace/exec trigger whose
 * events carry only cgroup_id starts one instance per container name, scoped to that
 * container's cgroup; a matching exec on the host (no container) starts none and is counted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { readNdjson, tempDir, uniqueToken } from '../helpers/session.ts';
import { objectDir } from '../helpers/kernel.ts';
import { busyboxRootfs, containerName, containerSkip, runContainer } from '../helpers/containers.ts';
import { assertValidSummary } from '../runner/summary-schema.ts';

describe('for_each on a container field', { skip: containerSkip() }, () => {
  test('one instance per container name, each scoped to its container; a host event starts none', async (t) => {
    const rootfs = busyboxRootfs(t);
    const token = uniqueToken();
    fs.writeFileSync(path.join(rootfs, 'tmp', token), 'x');
    const names = [containerName('each-a'), containerName('each-b')];
    const out = tempDir(t, 'gadget-run-out-');
    const stop = new AbortController();
    let ran: Promise<string[]> | undefined;
    const summary = await runRecipe(parseRecipe(`name: per-container
duration: 2m
steps:
  - id: trig
    gadget: trace/exec
    filter: 'args~mark-${token}'
  - id: each
    gadget: trace/exec
    filter: 'comm==cat'
    start_on: {step: trig}
    for_each: container_name
    scope: trigger
`, 'per-container.yaml'), {
      outDir: out, objectDir: objectDir(), log: () => {}, signal: stop.signal, processSignals: false,
      observer: {
        attached: () => {
          // the host's exec matches the trigger's filter but is in no container
          spawn('/bin/echo', [`mark-${token}`], { stdio: 'ignore' });
          // each container triggers, then (after its lazy attach) execs cat in its own cgroup
          ran = Promise.all(names.map((n) => runContainer(n, rootfs, ['/bin/sh', '-c', `/bin/echo mark-${token}; /bin/sleep 5; /bin/cat /tmp/${token}`])))
            // the instances' last events are flushed before the run stops
            .then(async (outs) => (await new Promise((r) => setTimeout(r, 1000)), outs))
            .finally(() => stop.abort());
        },
        captured: () => {},
      },
    });
    assert.ok(ran, 'the steps were attached');
    assert.deepEqual(await ran, ['x', 'x'].map((x) => `mark-${token}\n${x}`), 'both containers ran');
    assertValidSummary(summary);
    assert.equal(summary.status, 'interrupted', JSON.stringify(summary.reasons));
    const each = summary.steps.find((s) => s.id === 'each')!;
    const instances = each.instances ?? [];
    assert.deepEqual(instances.map((i) => i.key).sort(), [...names].sort(), JSON.stringify(each));
    const cats = readNdjson(path.join(out, 'raw', 'each.ndjson'));
    for (const i of instances) {
      assert.equal(i.status, 'interrupted', JSON.stringify(i));
      assert.equal(i.triggered_by.fields.container_name, i.key);
      const cgroup = i.triggered_by.fields.cgroup_id;
      assert.ok(cgroup !== undefined, 'the instance records the cgroup its key was found by');
      // its own container's cat, and nobody else's
      assert.equal(i.events, 1, JSON.stringify(i));
      assert.equal(cats.filter((e) => e.cgroup_id === cgroup).length, 1, JSON.stringify(cats));
    }
    assert.equal(cats.length, 2);
    assert.notEqual(instances[0].triggered_by.fields.cgroup_id, instances[1].triggered_by.fields.cgroup_id);
    // the host's echo (and podman's own argv) had no container_name
    assert.match((each.warnings ?? []).join('\n'), /start events? of trig had no container_name/);
    const written = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(written.steps.find((s: { id: string }) => s.id === 'each').instances.map((i: { key: string }) => i.key).sort(), [...names].sort());
  });
});
