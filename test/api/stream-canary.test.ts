/**
 * stream()'s liveness canary against the real kernel: `ready` resolves once the gadget's canary
 * came back through the ring (never delivered, whatever the filter); a stream made deaf on
 * purpose (a hook that attaches but never fires) rejects `ready` with CouldNotTraceError and
 * leaves nothing attached; `liveness` and `canaryBudget` are the recipe's keys.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { CouldNotTraceError, RecipeError, stream, type GadgetEvent } from '../../src/api/index.ts';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { bpfFds, kernelSkip, objectDir } from '../helpers/kernel.ts';
import { newBpfFds } from '../helpers/leaks.ts';

const skip = kernelSkip();

test('stream(trace/exec) is proven before ready, and the canary is never delivered, even through a filter that would take it', { skip }, async (t) => {
  const token = `stream-canary-${process.pid}-${Date.now()}`;
  const events = stream('trace/exec', { filter: 'comm~^(canary|true)$', objects: objectDir() });
  t.after(() => events.close());
  await events.ready;
  const canary = events.canary();
  assert.equal(canary?.state, 'proven', JSON.stringify(canary));
  assert.ok(canary!.ms! >= 1);
  execFileSync('/bin/true', [token]);
  const before: GadgetEvent[] = [];
  for await (const e of events) {
    if ((e.args as string[])[1] === token) break;
    before.push(e);
  }
  assert.ok(!before.some((e) => e.comm === 'canary' || (e.args as string[]).includes('--exit')), JSON.stringify(before));
});

test('a deaf stream (its hook attaches and never fires) rejects ready with CouldNotTraceError, and detaches everything', { skip }, async () => {
  const exec = gadgets['trace/exec'] as GadgetDefinition;
  const registry = gadgets as Record<string, GadgetDefinition>;
  registry['trace/exec'] = {
    ...exec,
    variants: [
      { name: 'execveat only', requires: [], programs: ['enter_execveat', 'exit_execveat'] },
      { name: 'execve (never chosen)', requires: [{ tracepoint: 'syscalls/sys_enter_no_such_call' }], programs: ['enter_execve', 'exit_execve'] },
    ],
  };
  const before = bpfFds();
  try {
    const events = stream('trace/exec', { objects: objectDir(), canaryBudget: '150ms' });
    await assert.rejects(events.ready, (err: unknown) => {
      assert.ok(err instanceof CouldNotTraceError, String(err));
      assert.match(err.message, /^trace\/exec: attached, but no event from the traced scope reached the ring in 150 ms/);
      return true;
    });
    assert.equal(events.canary()?.state, 'failed');
    await assert.rejects(events.next(), CouldNotTraceError);
    await events.close();
    assert.deepEqual(newBpfFds(before), [], 'a deaf stream leaves no link, program or map');
  } finally {
    registry['trace/exec'] = exec;
  }
});

test('liveness: off runs no canary; proven refuses a gadget without one, naming the option', { skip }, async (t) => {
  const off = stream('trace/exec', { liveness: 'off', objects: objectDir() });
  t.after(() => off.close());
  await off.ready;
  assert.deepEqual(off.canary(), { state: 'off' });
  const oom = stream('trace/oomkill', { liveness: 'proven', objects: objectDir() });
  await assert.rejects(oom.ready, (err: unknown) => {
    assert.ok(err instanceof RecipeError, String(err));
    assert.match(err.message, /liveness: proven, but trace\/oomkill's liveness cannot be proven: provoking an OOM kill is not safe/);
    return true;
  });
});
