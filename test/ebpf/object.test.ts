import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { BpfObject } from '../../src/ebpf/object.ts';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { bpfFds, kernelSkip, multiarchIncludes, objectPath, REPO } from '../helpers/kernel.ts';
import { tempDir } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/open'];

describe('BpfObject before load (no root)', () => {
  test('a missing object says how to build it', () => {
    assert.throws(() => BpfObject.open('/nonexistent/trace_nope.bpf.o'), /trace_nope\.bpf\.o: BPF object not found — build the objects with `make -C bpf`/);
  });

  test('an object without BTF says to build it with -g', (t) => {
    const dir = tempDir(t);
    const obj = path.join(dir, 'no_btf.bpf.o');
    execFileSync('clang', ['-O2', '-target', 'bpf', ...multiarchIncludes(), '-c', path.join(REPO, 'test/fixtures/no_btf.bpf.c'), '-o', obj]);
    // in a child process: a crash in native code must fail this test, not end the test run
    const script = `import { BpfObject } from ${JSON.stringify(path.join(REPO, 'src/ebpf/object.ts'))};
      try { BpfObject.open(${JSON.stringify(obj)}); console.log('opened'); } catch (e) { console.log(e.message); }`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.signal, null, `opening an object without BTF killed node with ${r.signal}`);
    assert.match(r.stdout, /no_btf\.bpf\.o: the object has no BTF; build it with clang -g/);
  });

  test('programs lists names and sections', () => {
    const obj = BpfObject.open(objectPath(def));
    try {
      const sections = obj.programs().map((p) => `${p.name} ${p.section}`);
      assert.ok(sections.includes('enter_openat tracepoint/syscalls/sys_enter_openat'), sections.join(', '));
      assert.ok(sections.includes('exit_openat tracepoint/syscalls/sys_exit_openat'), sections.join(', '));
      assert.throws(() => obj.disableProgram('nope'), /no program "nope" \(has: .*enter_openat/);
    } finally {
      obj.close();
    }
  });

  test('setConstants names what is wrong', () => {
    const obj = BpfObject.open(objectPath(def));
    try {
      assert.throws(() => obj.setConstants({ targ_nope: 1 }), /no constant "targ_nope" \(has: .*targ_tgid/);
      assert.throws(() => obj.setConstants({ targ_comm: 'sixteen-bytes-xx' }), /"sixteen-bytes-xx" is too long for targ_comm \(15 bytes at most\)/);
      obj.setConstants({ targ_comm: 'fifteen-bytes-x', targ_tgid: 7, targ_cgroup_id: 2n ** 63n });
    } finally {
      obj.close();
    }
  });
});

describe('BpfObject loaded', { skip: kernelSkip(def) }, () => {
  test('constants cannot change after load', async () => {
    const obj = BpfObject.open(objectPath(def));
    try {
      obj.setMaxEntries('events', 1 << 16);
      await obj.load();
      assert.throws(() => obj.setConstants({ targ_tgid: 1 }), /constants must be set before load/);
      assert.throws(() => obj.readGlobal('nope'), /no global "nope"/);
    } finally {
      obj.close();
    }
  });

  test('readGlobal reads the live value of a .bss counter', async () => {
    const obj = BpfObject.open(objectPath(def));
    try {
      const ring = 16 * 1024; // room for ~48 events: most of 1000 opens are lost
      obj.setConstants({ targ_tgid: process.pid });
      obj.setMaxEntries('events', ring);
      await obj.load();
      obj.attachAll();
      for (let i = 0; i < 1000; i++) fs.closeSync(fs.openSync('/dev/null', 'r'));
      obj.detach();
      // what the kernel holds, read through bpftool from this object's .bss map
      const ours = new Set(bpfFds().filter((f) => f.kind === 'bpf-map').map((f) => Number(f.info.map_id)));
      const maps = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show']).toString()) as { id: number; name?: string }[];
      const bss = maps.filter((m) => ours.has(m.id) && m.name?.endsWith('.bss'));
      assert.equal(bss.length, 1, 'the object has one .bss map');
      const dump = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'id', String(bss[0].id)]).toString());
      const kernel = (dump[0].formatted.value['.bss'] as Record<string, number>[]).find((v) => 'gadget_lost' in v)!.gadget_lost;
      assert.ok(kernel >= 1000 - ring / 336, `the program counted ${kernel} lost events`);
      assert.equal(obj.readGlobal('gadget_lost'), kernel);
    } finally {
      obj.close();
    }
  });
});
