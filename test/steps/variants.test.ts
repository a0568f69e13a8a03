/**
 * Hooks chosen per kernel (issue 15): a gadget lists hook variants in order
 * of preference, and the probe takes the first whose hooks are here and
 * whose programs load, leaving out the programs of the others; when none
 * does, each variant's own reason is given. The fixture's programs are real
 * and loaded on this kernel: one the verifier rejects, one it accepts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { forgetProbes } from '../../src/ebpf/load-probe.ts';
import { unsupportedMessage } from '../../src/ebpf/reasons.ts';
import { gadgets, probeSupport } from '../../src/steps/index.ts';
import { setKnownGadgets, VARIANT_ENV, VariantPinError } from '../../src/steps/hooks.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { isRoot, NOT_ROOT, objectDir, REPO } from '../helpers/kernel.ts';

const skip = isRoot() ? false : NOT_ROOT;
const HAS_KPROBES = fs.existsSync('/sys/bus/event_source/devices/kprobe');

function fixture(t: import('node:test').TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-variants-'));
  const before = process.env.GADGET_RUN_PROBE_CACHE;
  process.env.GADGET_RUN_PROBE_CACHE = path.join(dir, 'cache');
  forgetProbes();
  t.after(() => {
    if (before === undefined) delete process.env.GADGET_RUN_PROBE_CACHE;
    else process.env.GADGET_RUN_PROBE_CACHE = before;
    forgetProbes();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-I', objectDir(), '-c', path.join(REPO, 'test/fixtures/variants.bpf.c'), '-o', path.join(dir, 'variants.bpf.o')]);
  return dir;
}

const base = { ...gadgets['trace/open'], id: 'test/variants', object: 'variants.bpf.o', requires: [] } satisfies GadgetDefinition;

test('the first variant whose hooks are here and whose programs load is used; the others\' programs are left out', { skip }, async (t) => {
  const dir = fixture(t);
  const def: GadgetDefinition = {
    ...base,
    variants: [
      { name: 'tp_btf sys_enter (rejected)', requires: [], programs: ['rejected'] },
      { name: 'kprobe do_sys_openat2', requires: [{ kprobe: 'do_sys_openat2' }], programs: ['accepted'] },
      { name: 'tp_btf sys_enter (accepted)', requires: [], programs: ['accepted'] },
    ],
  };
  const { why, variant } = await probeSupport(def, dir);
  assert.equal(why, undefined);
  // the kprobe variant (same program) is taken where kprobes exist (the qemu kernels), skipped where not (this host)
  assert.equal(variant?.name, HAS_KPROBES ? 'kprobe do_sys_openat2' : 'tp_btf sys_enter (accepted)');
  assert.deepEqual(variant?.leaveOut, ['rejected']);
  assert.equal(variant?.object, 'variants.bpf.o');
});

test('no variant runs: unsupported, with each variant\'s own reason in order of preference', { skip }, async (t) => {
  const dir = fixture(t);
  const def: GadgetDefinition = {
    ...base,
    variants: [
      { name: 'tracepoint nope/nope', requires: [{ tracepoint: 'gadget_run/no_such_event' }], programs: [] },
      { name: 'tp_btf sys_enter', requires: [], programs: ['rejected'] },
      { name: 'kprobe gadget_run_no_such_function', requires: [{ kprobe: 'gadget_run_no_such_function' }], programs: ['accepted'] },
      { name: 'fentry gadget_run_no_such_function', requires: [{ fentry: 'gadget_run_no_such_function' }], programs: ['accepted'] },
    ],
  };
  const { why, variant } = await probeSupport(def, dir);
  assert.equal(variant, undefined);
  assert.ok(why?.kind === 'variants', JSON.stringify(why));
  assert.deepEqual(why.tried.map((t) => t.variant), def.variants!.map((v) => v.name));
  assert.deepEqual(why.tried.map((t) => t.why.kind), ['tracepoint', 'load', HAS_KPROBES ? 'kprobe' : 'kprobes', 'btf-func']);
  const load = why.tried[1].why;
  assert.ok(load.kind === 'load' && load.verifier && load.program === 'rejected', JSON.stringify(load));
  const text = unsupportedMessage(def.id, why);
  assert.match(text, /^test\/variants: unsupported here — needs one of its hooks \(tracepoint nope\/nope, tp_btf sys_enter, kprobe gadget_run_no_such_function, fentry gadget_run_no_such_function\): /);
  assert.match(text, /tracepoint nope\/nope: tracepoint gadget_run\/no_such_event: this kernel does not have it \| tp_btf sys_enter: its object variants.bpf.o to load: .*rejected/);
  assert.match(text, /fentry gadget_run_no_such_function: fentry on gadget_run_no_such_function: the kernel function is not in the kernel's BTF$/);
});

test('GADGET_RUN_VARIANT pins one variant: only it is tried; a name that is no variant, or no gadget, is an error naming the choices', { skip }, async (t) => {
  const dir = fixture(t);
  const def: GadgetDefinition = {
    ...base,
    variants: [
      { name: 'tp_btf sys_enter (accepted)', requires: [], programs: ['accepted'] },
      { name: 'tp_btf sys_enter (rejected)', requires: [], programs: ['rejected'] },
    ],
  };
  const before = process.env[VARIANT_ENV];
  t.after(() => {
    if (before === undefined) delete process.env[VARIANT_ENV];
    else process.env[VARIANT_ENV] = before;
  });
  // pinned to the second: the first, which would load, is not taken; its program is left out
  process.env[VARIANT_ENV] = 'trace/exec=tracepoint sched/sched_process_exec ; test/variants=tp_btf sys_enter (rejected)';
  setKnownGadgets([...Object.keys(gadgets), 'test/variants']);
  t.after(() => setKnownGadgets(Object.keys(gadgets)));
  const pinned = await probeSupport(def, dir);
  assert.equal(pinned.variant, undefined);
  assert.ok(pinned.why?.kind === 'load' && pinned.why.program === 'rejected', JSON.stringify(pinned.why));
  // the definition's own pin wins over the environment's
  const own = await probeSupport({ ...def, pinnedVariant: 'tp_btf sys_enter (accepted)' }, dir);
  assert.deepEqual([own.why, own.variant?.name, own.variant?.leaveOut], [undefined, 'tp_btf sys_enter (accepted)', ['rejected']]);

  process.env[VARIANT_ENV] = 'test/variants=kprobe nothing';
  await assert.rejects(probeSupport(def, dir), (err: Error) => err instanceof VariantPinError &&
    err.message === 'GADGET_RUN_VARIANT: test/variants has no variant "kprobe nothing"; its variants: "tp_btf sys_enter (accepted)", "tp_btf sys_enter (rejected)"');
  process.env[VARIANT_ENV] = 'trace/nothing=x';
  await assert.rejects(probeSupport(def, dir), /^VariantPinError: GADGET_RUN_VARIANT: trace\/nothing is not a gadget \(gadget-run gadgets lists them\)$/);
  process.env[VARIANT_ENV] = 'test/variants';
  await assert.rejects(probeSupport(def, dir), /GADGET_RUN_VARIANT: "test\/variants" is not gadget=variant/);
  // the CLI: a bad command line, exit 2, with the same words
  const cli = spawnSync(path.join(REPO, 'bin/gadget-run'), ['gadgets'], { env: { ...process.env, [VARIANT_ENV]: 'trace/capabilities=kprobe' }, encoding: 'utf8' });
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /^gadget-run: GADGET_RUN_VARIANT: trace\/capabilities has no variant "kprobe"; its variants: "tracepoint capability\/cap_capable", "fexit cap_capable", "kprobe cap_capable"\n$/);
});
