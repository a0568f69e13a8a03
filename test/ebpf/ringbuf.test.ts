import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { BpfObject } from '../../src/ebpf/object.ts';
import { sharedPoller } from '../../src/ebpf/poller.ts';
import { RingReader } from '../../src/ebpf/ringbuf.ts';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { bpfFds, kernelSkip, objectPath } from '../helpers/kernel.ts';
import { tempDir, uniqueToken } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/open'];
const skip = kernelSkip(def);

/** trace_open.bpf.o loaded with `constants`, its ring buffer mapped, programs attached. */
async function openTracer(constants: Record<string, number>, ringBytes: number) {
  const obj = BpfObject.open(objectPath(def));
  let reader: RingReader | undefined;
  try {
    obj.setConstants(constants);
    obj.setMaxEntries('events', ringBytes);
    await obj.load();
    reader = new RingReader(obj.mapFd('events'), ringBytes);
    obj.attachAll();
  } catch (err) {
    reader?.close();
    obj.close();
    throw err;
  }
  const layout = obj.btf.struct('open_event');
  const at = (name: string) => layout.members.find((m) => m.name === name)!.offset;
  const [pathAt, pidAt, retAt] = [at('path'), at('pid'), at('ret')];
  const r = reader;
  return {
    obj,
    reader: r,
    /** drain, returning the records as { pid, ret, path } */
    drain(): { pid: number; ret: number; path: string }[] {
      const out: { pid: number; ret: number; path: string }[] = [];
      r.drain((o, len) => {
        assert.equal(len, layout.size, 'an open_event record has the struct\'s size');
        const end = r.buf.indexOf(0, o + pathAt);
        out.push({ pid: r.dv.getUint32(o + pidAt, true), ret: r.dv.getInt32(o + retAt, true), path: r.buf.toString('utf8', o + pathAt, end) });
      });
      return out;
    },
    close() {
      r.close();
      obj.close();
    },
  };
}

describe('RingReader over trace_open.bpf.o', { skip }, () => {
  test('N opens by this process arrive once each, exactly', async (t) => {
    const file = path.join(tempDir(t), uniqueToken('ring'));
    fs.writeFileSync(file, 'x');
    const tracer = await openTracer({ targ_tgid: process.pid }, 1 << 22);
    try {
      const N = 1000;
      for (let i = 0; i < N; i++) fs.closeSync(fs.openSync(file, 'r'));
      const mine = tracer.drain().filter((e) => e.path === file);
      assert.equal(mine.length, N);
      assert.ok(mine.every((e) => e.pid === process.pid && e.ret >= 0), 'pid is ours and every open succeeded');
      assert.deepEqual(tracer.drain().filter((e) => e.path === file), [], 'a drained ring gives nothing more');
      assert.equal(tracer.obj.readGlobal('gadget_lost'), 0);
    } finally {
      tracer.close();
    }
  });

  test('records wrap around the end of a small ring intact', async (t) => {
    const file = path.join(tempDir(t), uniqueToken('wrap'));
    fs.writeFileSync(file, 'x');
    const ring = 16 * 1024; // ~48 records of 336 bytes: 200 batches wrap it ~40 times
    const tracer = await openTracer({ targ_tgid: process.pid }, ring);
    try {
      let seen = 0;
      for (let batch = 0; batch < 200; batch++) {
        for (let i = 0; i < 10; i++) fs.closeSync(fs.openSync(file, 'r'));
        const got = tracer.drain().filter((e) => e.path === file);
        assert.equal(got.length, 10, `batch ${batch}`);
        seen += got.length;
      }
      assert.equal(seen, 2000);
      assert.equal(tracer.obj.readGlobal('gadget_lost'), 0);
    } finally {
      tracer.close();
    }
  });

  /** A shell opens `file` N times; returns what the ring delivered and what the program counted as lost. */
  async function flood(t: TestContext, ringBytes: number, drainWhileRunning: boolean) {
    const file = path.join(tempDir(t), uniqueToken('flood'));
    fs.writeFileSync(file, 'x');
    // dash opens the file once per `: <` and nothing else once `read` returns
    const child = spawn('/bin/sh', ['-c', `read go; i=0; while [ $i -lt ${N} ]; do : < "$1"; i=$((i+1)); done`, 'sh', file], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    await once(child, 'spawn');
    const closed = once(child, 'close');
    let tracer: Awaited<ReturnType<typeof openTracer>> | undefined;
    try {
      tracer = await openTracer({ targ_tgid: child.pid! }, ringBytes);
      let exited = false;
      void closed.then(() => (exited = true));
      let events = 0;
      let others = 0;
      const count = () => {
        for (const e of tracer!.drain()) {
          if (e.path === file && e.pid === child.pid && e.ret >= 0) events++;
          else others++;
        }
      };
      const wakeups = sharedPoller().register(tracer.reader.fd);
      child.stdin!.end('go\n');
      try {
        while (!exited) {
          if (drainWhileRunning) count();
          await wakeups.wait();
        }
      } finally {
        await wakeups.close();
      }
      const [code] = await closed;
      assert.equal(code, 0, 'the workload ran to its end');
      tracer.obj.detach();
      count();
      assert.equal(others, 0, 'the traced shell opened nothing but the file');
      return { events, lost: tracer.obj.readGlobal('gadget_lost') };
    } finally {
      tracer?.close();
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await closed;
      }
    }
  }

  const N = 100_000;

  test('100 000 opens drained while they happen: events received + lost = 100 000', async (t) => {
    const { events, lost } = await flood(t, 1 << 22, true);
    assert.equal(events + lost, N, `${events} events + ${lost} lost`);
  });

  test('100 000 opens into a ring never drained until the end: what does not fit is counted lost', async (t) => {
    const ring = 16 * 1024;
    const { events, lost } = await flood(t, ring, false);
    assert.ok(events <= ring / 336, `${events} records cannot fit in ${ring} bytes`);
    assert.ok(events > 0, 'the records that fit arrive');
    assert.equal(events + lost, N, `${events} events + ${lost} lost`);
  });

  test('close() leaves no BPF link, program, map or perf event of the object behind', async () => {
    const before = bpfFds();
    const tracer = await openTracer({ targ_tgid: process.pid }, 1 << 16);
    let linkIds: string[];
    let progIds: string[];
    try {
      const held = bpfFds().filter((f) => !before.some((b) => b.fd === f.fd));
      const links = held.filter((f) => f.kind === 'bpf_link');
      const attached = tracer.obj.attachedCount;
      assert.ok(attached >= 2, 'enter and exit programs attached');
      assert.equal(links.length, attached, 'one link fd per attached program');
      linkIds = links.map((l) => l.info.link_id);
      progIds = links.map((l) => l.info.prog_id);
      assert.ok(linkIds.every(Boolean) && progIds.every(Boolean), 'fdinfo names link and program ids');
    } finally {
      tracer.close();
    }
    assert.deepEqual(bpfFds().map((f) => f.fd), before.map((f) => f.fd), 'the BPF and perf event fds held are those held before');
    const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'list']).toString() || '[]') as { id: number; prog_id: number }[];
    const left = links.filter((l) => linkIds.includes(String(l.id)) || progIds.includes(String(l.prog_id)));
    assert.deepEqual(left, [], 'bpftool lists none of the links or their programs');
  });
});
