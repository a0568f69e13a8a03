/**
 * The canary's budget per action, without a kernel: a stand-in helper (a shell script) reports
 * each action on stdout as bpf/canary/canary.c does, and fake probes say when their marker
 * "came". A step's budget counts from the helper's report of its action, so a helper slow to
 * get there (a TCG guest) does not fail a step that hears; a step that hears nothing still fails.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Canary, runCanary, type CanaryStep } from '../../src/runner/canary.ts';
import type { CanaryAction, CanaryProbe, GadgetDefinition, StepSession } from '../../src/steps/types.ts';
import { tempDir } from './cli-helpers.ts';

/** a helper that waits for the go, then reports its actions with `sleep`s between them */
function helper(dir: string, body: string): string {
  const file = path.join(dir, 'canary');
  fs.writeFileSync(file, `#!/bin/sh\ndd bs=1 count=1 of=/dev/null 2>/dev/null\n${body}\n`, { mode: 0o755 });
  return file;
}

/** a probe whose marker comes once `file` exists */
function probe(file: string): CanaryProbe {
  return { arm() {}, check: () => fs.existsSync(file), release() {}, disarm() {} };
}

function step(id: string, action: CanaryAction, p: CanaryProbe, budgetMs: number): CanaryStep {
  const def = { id: `fake/${id}`, mode: 'stream', liveness: { canary: [action] } } as unknown as GadgetDefinition;
  return { id, def, liveness: 'checked', budgetMs, session: { canary: p } as unknown as StepSession };
}

test('a step whose action the helper reaches late is proven: its budget counts from that action, not from the helper\'s start', async () => {
  const dir = tempDir();
  const came = path.join(dir, 'came');
  // 1.2 s of other actions before exec: four times the budget
  const file = helper(dir, `echo file; sleep 1.2; echo exec; touch ${came}; sleep 0.1`);
  const canary = new Canary(file, ['file', 'exec'], undefined);
  const { results, gone } = await runCanary([step('late', 'exec', probe(came), 300)], canary);
  await gone;
  const r = results.get('late')!;
  assert.equal(r.state, 'proven', JSON.stringify(r));
});

test('a step that hears nothing fails within its budget after its action, beside one that is proven', async () => {
  const dir = tempDir();
  const came = path.join(dir, 'came');
  const file = helper(dir, `echo file; sleep 0.8; echo exec; touch ${came}; sleep 2`);
  const canary = new Canary(file, ['file', 'exec'], undefined);
  const { results, gone } = await runCanary([step('hears', 'exec', probe(came), 300), step('deaf', 'exec', probe(path.join(dir, 'never')), 300)], canary);
  await gone;
  assert.equal(results.get('hears')!.state, 'proven', JSON.stringify(results.get('hears')));
  assert.deepEqual(results.get('deaf'), { state: 'failed', ms: 300, reason: 'attached, but no event from the traced scope reached the ring in 300 ms' });
});

test('a helper that ends before a step\'s action fails that step, with what it said', async () => {
  const dir = tempDir();
  const file = helper(dir, 'echo file; echo "canary: net: connect: Connection refused" >&2; exit 2');
  const canary = new Canary(file, ['file', 'net'], undefined);
  const { results, gone } = await runCanary([step('net', 'net', probe(path.join(dir, 'never')), 300)], canary);
  await gone;
  assert.deepEqual(results.get('net'), {
    state: 'failed',
    ms: 300,
    reason: 'attached, but no event from the traced scope reached the ring in 300 ms (canary: net: connect: Connection refused)',
  });
});
