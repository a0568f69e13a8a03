/**
 * Liveness canaries that provoke what no plain action can (issue 17), against the real kernel:
 * a slow write (trace/fsslower), a block request (top/block-io), a seccomp-refused syscall
 * (audit/seccomp), an egress attempt (audit/egress). Each is proven, drops its marker before
 * results and the verdict, and a deaf variant (its scope a cgroup the workload is not in) is
 * could_not_trace.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { exitCodeFor } from '../../src/runner/summary.ts';
import { gadgets, openSession } from '../../src/steps/index.ts';
import { livenessOf } from '../../src/steps/liveness.ts';
import { createWorkloadCgroup, destroyCgroup } from '../../src/runner/workload.ts';
import { scratchDirOn, scratchDirOnDisk } from '../../src/util/mounts.ts';
import { kernelSkip, OBJECT_DIR } from '../helpers/kernel.ts';
import { readNdjsonFile, tempDir } from './cli-helpers.ts';
import { assertValidSummary } from './summary-schema.ts';

const skip = kernelSkip();
const disk = scratchDirOnDisk();
const ext4 = scratchDirOn('ext4');

async function run(text: string, deafScope?: { id: bigint; level: number }) {
  const out = tempDir();
  const loaded = parseRecipe(text, 'canary.yaml', gadgets);
  const scoped: typeof openSession = (def, ctx) => openSession(def, deafScope ? { ...ctx, cgroup: deafScope } : ctx);
  const summary = await runRecipe(loaded, { outDir: out, objectDir: OBJECT_DIR, log: () => {}, processSignals: false, openSession: scoped });
  return { out, summary };
}

const STEPS = `
  - { id: slow, gadget: trace/fsslower, outputs: [slow.ndjson] }
  - { id: slowall, gadget: trace/fsslower, params: { min_ms: 0, fs: tmpfs }, filter: "comm==nothing", outputs: [slowall.ndjson] }
${ext4 ? '  - { id: slowext4, gadget: trace/fsslower, params: { min_ms: 5, fs: ext4 }, outputs: [slowext4.ndjson] }\n' : ''}\
${disk ? '  - { id: blockio, gadget: top/block-io, outputs: [blockio.ndjson] }\n' : ''}\
  - { id: seccomp, gadget: audit/seccomp, outputs: [seccomp.ndjson] }
  - { id: learn, gadget: advise/egress, outputs: [learn.json] }
egress:
  mode: block
  allow: []
  allow_loopback: false
  allow_resolver: false
`;

test('a slow write, a block request, a refused syscall and an egress attempt prove their steps; none reaches results or the verdict', { skip }, async () => {
  const { out, summary } = await run(`name: canary-provoked
run: "sleep 0.05"
steps:${STEPS}`);
  assert.equal(summary.status, 'passed', summary.reasons.join('; '));
  assertValidSummary(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')));
  const ids = summary.steps.map((s) => s.id);
  for (const id of ['slow', 'slowall', 'seccomp', 'learn', 'egress', ...(ext4 ? ['slowext4'] : []), ...(disk ? ['blockio'] : [])]) assert.ok(ids.includes(id), `${id} in ${ids}`);
  for (const s of summary.steps) {
    assert.equal(s.canary?.state, 'proven', `${s.id}: ${JSON.stringify(s.canary)}`);
    assert.ok(s.canary!.ms! >= 1);
  }
  const rows = (f: string) => readNdjsonFile(path.join(out, f)) as Record<string, unknown>[];
  for (const f of ['slow.ndjson', ...(ext4 ? ['slowext4.ndjson'] : [])]) assert.ok(!rows(f).some((e) => e.comm === 'canary' || String(e.file).includes('gadget-run-canary')), f);
  assert.deepEqual(rows('slowall.ndjson'), []);
  if (disk) assert.ok(!rows('blockio.ndjson').some((e) => e.comm === 'canary'));
  assert.ok(!rows('seccomp.ndjson').some((e) => e.comm === 'canary' || e.syscall === 'getppid'));
  // block mode with nothing allowed: the canary's attempts to 192.0.2.1:9 were not refused events
  const egress = summary.steps.find((s) => s.id === 'egress')!;
  assert.equal(egress.events, 0);
  // advise/egress shares the hooks: the list it learns has none of the canary's destinations
  assert.doesNotMatch(fs.readFileSync(path.join(out, 'learn.json'), 'utf8'), /192\.0\.2\.1/);
  const refused = summary.assertions.find((a) => a.name === 'egress: nothing refused');
  assert.equal(refused?.status, 'passed', JSON.stringify(refused));
});

test('the slow write is as slow as the step asks: min_ms 200 alone is proven, by a marker no quicker than that', { skip }, async () => {
  const { summary } = await run(`name: canary-slow
run: "true"
canary_budget: 2s
steps:
  - { id: slow, gadget: trace/fsslower, params: { min_ms: 200 } }
`);
  assert.equal(summary.status, 'passed', summary.reasons.join('; '));
  const [step] = summary.steps;
  assert.equal(step.canary?.state, 'proven', JSON.stringify(step.canary));
  // a lower bound the mechanism guarantees (the write waits for the page), not a timing of the machine
  assert.ok(step.canary!.ms! >= 200, JSON.stringify(step.canary));
  assert.equal(step.events, 0);
});

test('the same steps made deaf (their scope a cgroup the workload is not in) are could_not_trace, not passed', { skip }, async () => {
  const elsewhere = createWorkloadCgroup('canary-elsewhere');
  const marker = path.join(tempDir(), 'ran');
  try {
    const { summary } = await run(`name: canary-provoked-deaf
run: "touch ${marker}"
canary_budget: 300ms
steps:${STEPS}`, { id: elsewhere.id, level: elsewhere.level });
    assert.equal(summary.status, 'could_not_trace');
    assert.equal(exitCodeFor(summary), 3);
    for (const s of summary.steps) {
      assert.equal(s.canary?.state, 'failed', `${s.id}: ${JSON.stringify(s.canary)}`);
      assert.match(s.reason!, /attached, but no event from the traced scope reached the ring in 300 ms/, s.id);
    }
    assert.ok(!fs.existsSync(marker), 'the workload must not run under a deaf gate');
  } finally {
    await destroyCgroup(elsewhere.path);
  }
});

test('the canaries follow the params: min_ms sets the slow write, a slower threshold or an fs with no scratch folder is unproven with the reason', () => {
  const fsslower = gadgets['trace/fsslower'];
  assert.deepEqual(livenessOf(fsslower, {}), { canary: ['slow=12'] });
  assert.deepEqual(livenessOf(fsslower, { min_ms: 0.5, fs: 'tmpfs' }), { canary: ['slow=3'] });
  assert.deepEqual(livenessOf(fsslower, { min_ms: 1000 }), {
    unproven: 'params.min_ms is 1000: a canary write that slow would hold the workload back (the canary proves min_ms up to 250)',
  });
  assert.deepEqual(livenessOf(fsslower, { fs: 'no_such_fs' }), {
    unproven: 'params.fs is no_such_fs, and none of the canary\'s scratch folders (/var/tmp, /tmp, /dev/shm) is on no_such_fs here',
  });
  if (ext4) assert.deepEqual(livenessOf(fsslower, { fs: 'ext4' }), { canary: [`slow=12,${ext4}`] });
  assert.deepEqual(livenessOf(gadgets['top/block-io']), disk ? { canary: [`disk=${disk}`] } : livenessOf(gadgets['top/block-io']));
  assert.deepEqual(livenessOf(gadgets['audit/seccomp']), { canary: ['seccomp'] });
  assert.deepEqual(livenessOf(gadgets['audit/egress']), { canary: ['egress'] });
});
