/**
 * profile/cpu's `.pb.gz` (src/runner/pprof.ts): any rows survive the
 * encoding exactly (property test, decoded with pprof-format), and a real
 * capture reads back through `go tool pprof` (Debian's golang-go, the
 * reference reader) with the same stacks and counts as its folded stacks.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Profile } from 'pprof-format';
import { pprofGz, profileRows, type ProfileRow } from '../../src/runner/pprof.ts';
import { gadgets } from '../../src/steps/index.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { stepContext, tempDir, traceWhile } from '../helpers/session.ts';

/** Each sample as "root;...;leaf" (and its labels) with its values, decoded from the file's bytes. */
function decode(gz: Buffer): { stack: string; values: number[]; pid?: number; comm?: string }[] {
  const p = Profile.decode(gunzipSync(gz));
  const str = (i: number | bigint) => p.stringTable.strings[Number(i)];
  const fn = new Map(p.function.map((f) => [Number(f.id), str(f.name)]));
  const loc = new Map(p.location.map((l) => [Number(l.id), fn.get(Number(l.line[0].functionId))!]));
  return p.sample.map((s) => {
    const labels = new Map(s.label.map((l) => [str(l.key), l]));
    const pid = labels.get('pid');
    const comm = labels.get('comm');
    return {
      stack: s.locationId.map((id) => loc.get(Number(id))!).reverse().join(';'),
      values: s.value.map(Number),
      ...(pid ? { pid: Number(pid.num) } : {}),
      ...(comm ? { comm: str(comm.str) } : {}),
    };
  });
}

const frame = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.:<>\[\] -]{0,20}$/).filter((s) => !s.includes(';'));

test('any rows: every stack, count, pid and comm come back from the encoded profile; comm is a label, not a frame', () => {
  const row = fc.record({
    frames: fc.array(frame, { minLength: 1, maxLength: 12 }),
    count: fc.integer({ min: 1, max: 1_000_000 }),
    pid: fc.option(fc.integer({ min: 0, max: 4_194_304 }), { nil: undefined }),
    comm: fc.option(frame, { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.array(row, { maxLength: 40 }), fc.option(fc.integer({ min: 1, max: 1e9 }), { nil: undefined }), (specs, period) => {
      const rows: ProfileRow[] = specs.map((s) => ({
        stack: (s.comm !== undefined ? [s.comm, ...s.frames] : s.frames).join(';'),
        count: s.count,
        ...(s.pid !== undefined ? { pid: s.pid } : {}),
        ...(s.comm !== undefined ? { comm: s.comm } : {}),
      }));
      const back = decode(pprofGz(profileRows(rows), period));
      assert.equal(back.length, rows.length);
      back.forEach((b, i) => {
        const s = specs[i];
        assert.equal(b.stack, s.frames.join(';'));
        assert.deepEqual(b.values, period ? [s.count, s.count * period] : [s.count]);
        assert.equal(b.pid, s.pid);
        assert.equal(b.comm, s.comm);
      });
    }),
    { numRuns: 200 },
  );
});

test('rows without a stack or a positive count are left out', () => {
  assert.deepEqual(profileRows([{ stack: 'a;b', count: 0 }, { count: 3 }, null, { stack: 'a', count: 2, pid: 'x' }]), [{ stack: 'a', count: 2 }]);
});

const GO = ['/usr/bin/go', '/usr/lib/go/bin/go'].find((f) => fs.existsSync(f));
const def = gadgets['profile/cpu'];

describe('go tool pprof reads a real profile', { skip: kernelSkip(def) || (GO ? false : 'no `go` (Debian golang-go; ./scripts/setup installs it)') }, () => {
  test('a C busy loop: `go tool pprof -traces` gives the same stacks and counts as the folded stacks', async (t) => {
    const bin = compileFixture(t, 'hot_loop', ['-g', '-fno-omit-frame-pointer']);
    const { events } = await traceWhile(def, stepContext(t, { params: { frequency: 99 } }), async () => {
      const child = spawn(bin, ['1'], { stdio: 'ignore' });
      await once(child, 'exit');
    });
    const rows = profileRows(events);
    assert.ok(rows.length > 0, 'samples were taken');
    const file = path.join(tempDir(t), 'cpu.pb.gz');
    fs.writeFileSync(file, pprofGz(rows));
    const env = { ...process.env, HOME: tempDir(t), GOCACHE: tempDir(t), PPROF_TMPDIR: tempDir(t) };
    const out = execFileSync(GO!, ['tool', 'pprof', '-traces', file], { env, encoding: 'utf8' });
    // -traces: a block per sample, "-----+----" between: its labels ("comm:  hot_loop"), then its value and the leaf, then the callers
    const fromPprof = new Map<string, number>();
    for (const block of out.split(/^-+\+-+$/m).slice(1)) {
      const lines = block.split('\n').filter((l) => l.trim());
      if (!lines.length) continue;
      const labels: Record<string, string> = {};
      let i = 0;
      for (let m; i < lines.length && (m = /^\s*(\w+):\s+(.*)$/.exec(lines[i])); i++) labels[m[1]] = m[2].trim();
      const m = /^\s*(\d+)\s+(.*)$/.exec(lines[i] ?? '');
      assert.ok(m, `a sample line in: ${block}`);
      const frames = [m[2], ...lines.slice(i + 1).map((l) => l.trim())].reverse();
      const key = `${labels.comm} ${labels.pid} ${frames.join(';')}`;
      fromPprof.set(key, (fromPprof.get(key) ?? 0) + Number(m[1]));
    }
    // the same multiset of stacks with their process (pprof merges samples with equal stacks and labels: compare sums);
    // pprof shows C++ names without their parameter lists, so stacks are compared for the C fixture, totals for all
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    assert.equal(total(fromPprof), rows.reduce((n, r) => n + r.count, 0));
    const fromRows = new Map<string, number>();
    for (const r of rows.filter((r) => r.comm === 'hot_loop')) {
      const frames = r.stack.split(';');
      const key = `${r.comm} ${r.pid} ${(frames.length > 1 && frames[0] === r.comm ? frames.slice(1) : frames).join(';')}`;
      fromRows.set(key, (fromRows.get(key) ?? 0) + r.count);
    }
    assert.ok(fromRows.size > 0, 'the fixture was sampled');
    const mine = new Map([...fromPprof].filter(([k]) => k.startsWith('hot_loop ')));
    assert.deepEqual(new Map([...mine].sort()), new Map([...fromRows].sort()));
    const top = execFileSync(GO!, ['tool', 'pprof', '-top', file], { env, encoding: 'utf8' });
    assert.match(top, /gadget_hot_loop/);
  });
});
