/**
 * Issue 14's reproduction, live on the test cluster (test/k8s/cluster.ts): a `trace/open`
 * step with a 4 KiB ring over a loop of opens on the node loses events; `run --cluster`
 * must fail on them as the same recipe run locally does (it once reported 1 838 611 lost
 * events and exited 0). The table of every path's verdict without a cluster is
 * test/runner/verdict-paths.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ClusterSummary } from '../../src/k8s/cluster-run.ts';
import { clusterRun, clusterSuite, NODE, skipK8s } from './cluster.ts';

// a comm of its own (at most 15 characters), so the step's kernel filter sees only this loop
const FLOODER = `grflood${process.pid % 100_000}`;

clusterSuite({ deploy: true });

/** A shell named FLOODER opening /etc/hostname in a loop with no fork, far faster than a 4 KiB ring drains. */
function flood(): ChildProcess {
  const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-k8s-flood-')), FLOODER);
  fs.copyFileSync('/bin/dash', bin);
  fs.chmodSync(bin, 0o755);
  return spawn(bin, ['-c', 'while :; do read x < /etc/hostname; done'], { stdio: 'ignore' });
}

test('run --cluster fails on events lost past allow_lost, naming the step and the count, as a local run does', { skip: skipK8s, timeout: 300_000 }, async () => {
  const recipe = `name: k8s-lost\nsteps:\n  - { id: opens, gadget: trace/open, buffer: 4KiB, filter: comm==${FLOODER}, duration: 8s }\n`;
  const flooder = flood();
  try {
    const r = await clusterRun(recipe, []);
    const s = JSON.parse(fs.readFileSync(path.join(r.out, 'summary.json'), 'utf8')) as ClusterSummary;
    const lost = s.steps[0].lost;
    assert.ok(lost > 0, `a 4 KiB ring overflows under the loop (${s.steps[0].events} events)`);
    assert.deepEqual(s.cluster.nodes.map((n) => [n.node, n.phase]), [[NODE, 'Succeeded']]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(s.status, 'failed');
    assert.deepEqual(s.reasons, [`step opens lost ${lost} events in the kernel (ring buffer full; none may be): raise its buffer, narrow its filter, or set allow_lost`]);
    assert.match(r.stdout, new RegExp(`step opens lost ${lost} events`));

    // allow_lost: true is the recipe's way to accept them, on a cluster as locally
    const allowed = await clusterRun(recipe.replace('name: k8s-lost\n', 'name: k8s-lost\nallow_lost: true\n'), []);
    assert.equal(allowed.code, 0, allowed.stdout + allowed.stderr);
  } finally {
    flooder.kill('SIGKILL');
  }
});
