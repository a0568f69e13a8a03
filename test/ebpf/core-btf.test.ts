import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { isWholeBtf } from '../../src/ebpf/btf.ts';
import { coreBtfFor, coreBtfSettled, MAX_ENTRIES, prune } from '../../src/ebpf/core-btf.ts';
import { kernelKey } from '../../src/ebpf/kernel-btf.ts';
import { BpfObject } from '../../src/ebpf/object.ts';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { emptyBtf } from '../helpers/btf.ts';
import { kernelSkip, objectPath } from '../helpers/kernel.ts';
import { stepContext, tempDir, traceWhile, uniqueToken } from '../helpers/session.ts';

const def: GadgetDefinition = gadgets['trace/open'];

describe('minimized CO-RE BTF: the file check (no root)', () => {
  test('whole BTF passes; truncated, padded, foreign or misframed blobs do not', () => {
    const good = emptyBtf();
    assert.equal(isWholeBtf(good), true);
    assert.equal(isWholeBtf(good.subarray(0, 24)), false, 'truncated');
    assert.equal(isWholeBtf(Buffer.concat([good, Buffer.from([0])])), false, 'a byte after the end');
    const magic = Buffer.from(good);
    magic.writeUInt16LE(0x9feb, 0);
    assert.equal(isWholeBtf(magic), false, 'byte-swapped magic');
    const strings = Buffer.from(good);
    strings[24] = 65;
    assert.equal(isWholeBtf(strings), false, 'a string section not starting with the empty name');
    const header = Buffer.from(good);
    header.writeUInt32LE(4096, 4);
    assert.equal(isWholeBtf(header), false, 'a header longer than the file');
    assert.equal(isWholeBtf(Buffer.from('not btf at all, just text\n')), false);
  });

  test('pruning keeps the newest entries, live temporaries and recent kernels', (t) => {
    const root = tempDir(t);
    const dir = path.join(root, 'aa11');
    fs.mkdirSync(dir);
    const day = 24 * 3600;
    const now = Date.now() / 1000;
    const touch = (p: string, ageS: number, dirToo = false) => {
      if (dirToo) fs.mkdirSync(p);
      else fs.writeFileSync(p, '');
      fs.utimesSync(p, now - ageS, now - ageS);
    };
    for (let i = 0; i < MAX_ENTRIES + 5; i++) touch(path.join(dir, `${String(i).padStart(4, '0')}.btf`), i * 60);
    touch(path.join(dir, '0000.btf.tmp-1-dead'), 3600);
    touch(path.join(dir, '0001.btf.tmp-2-live'), 1);
    touch(path.join(root, 'bb22'), 40 * day, true);
    touch(path.join(root, 'btf-cc33'), 1 * day, true);
    touch(path.join(root, 'not-a-kernel'), 40 * day, true);
    touch(path.join(root, 'dd44'), 40 * day, true);
    fs.writeFileSync(path.join(root, 'dd44', 'notes.txt'), 'not ours');
    fs.writeFileSync(path.join(root, 'dd44', 'ee.btf'), '');
    fs.utimesSync(path.join(root, 'dd44'), now - 40 * day, now - 40 * day);
    prune(dir);
    const left = fs.readdirSync(dir).sort();
    const btfs = left.filter((f) => f.endsWith('.btf'));
    assert.equal(btfs.length, MAX_ENTRIES - 1, 'room for the one being made');
    assert.equal(btfs[0], '0000.btf');
    assert.equal(btfs.at(-1), `${String(MAX_ENTRIES - 2).padStart(4, '0')}.btf`, 'the oldest went');
    assert.deepEqual(left.filter((f) => f.includes('.tmp-')), ['0001.btf.tmp-2-live']);
    assert.deepEqual(fs.readdirSync(root).sort(), ['aa11', 'btf-cc33', 'dd44', 'not-a-kernel'], 'a stale kernel folder goes, one holding other files stays');
    assert.deepEqual(fs.readdirSync(path.join(root, 'dd44')), ['notes.txt'], 'only our files went from it');
  });

  test('GADGET_RUN_BTF_CACHE=off: no minimized BTF, nothing made', (t) => {
    setCache(t, 'off');
    assert.equal(coreBtfFor(objectPath(def)), undefined);
  });
});

/** Point the cache at `dir` for one test. */
function setCache(t: TestContext, dir: string): void {
  const before = process.env.GADGET_RUN_BTF_CACHE;
  process.env.GADGET_RUN_BTF_CACHE = dir;
  t.after(() => {
    if (before === undefined) delete process.env.GADGET_RUN_BTF_CACHE;
    else process.env.GADGET_RUN_BTF_CACHE = before;
  });
}

/** Where the cache keeps trace/open's minimized BTF under `root`. */
function entryOf(root: string): string {
  const sha = createHash('sha256').update(fs.readFileSync(objectPath(def))).digest('hex');
  return path.join(root, kernelKey(), `${sha}.btf`);
}

/** trace/open through openSession (prepare.ts picks the cache up) sees an open of ours, with its CO-RE-read fields right. */
async function seesAnOpen(t: TestContext): Promise<void> {
  const file = path.join(tempDir(t), uniqueToken());
  const { events } = await traceWhile(def, stepContext(t, { filter: `pid==${process.pid}` }), () => fs.closeSync(fs.openSync(file, 'w')));
  const mine = events.filter((e) => e.path === file);
  assert.equal(mine.length, 1, JSON.stringify(events.slice(0, 5)));
  assert.equal(mine[0].pid, process.pid);
  assert.equal(mine[0].comm, fs.readFileSync('/proc/self/comm', 'utf8').trim());
  assert.equal(mine[0].mntns_id, Number(fs.readlinkSync('/proc/self/ns/mnt').match(/\[(\d+)\]/)![1]));
}

const bpftool = ['/usr/sbin/bpftool', '/usr/bin/bpftool'].find((p) => fs.existsSync(p));

describe('minimized CO-RE BTF: the cache', { skip: kernelSkip(def) || (!bpftool && 'bpftool is not installed (./scripts/setup installs it)') }, () => {
  test('the first use makes it in the background, the next load relocates against it', async (t) => {
    const root = tempDir(t);
    setCache(t, root);
    const obj = objectPath(def);
    assert.equal(coreBtfFor(obj), undefined, 'nothing cached yet: the full BTF this time');
    await coreBtfSettled();
    const entry = entryOf(root);
    const made = fs.readFileSync(entry);
    assert.ok(isWholeBtf(made));
    assert.ok(made.length < 64 * 1024, `${made.length} bytes: not minimized`);
    assert.ok(made.length < fs.statSync('/sys/kernel/btf/vmlinux').size / 100);
    assert.equal((fs.statSync(entry).mode & 0o777).toString(8), '644');
    assert.deepEqual(fs.readdirSync(path.dirname(entry)), [path.basename(entry)], 'no temporary file left');
    assert.equal(coreBtfFor(obj), entry);

    const o = BpfObject.open(obj, { coreBtf: entry });
    try {
      o.setMaxEntries('events', 1 << 16);
      await o.load();
      o.attachAll();
      assert.ok(o.attachedCount > 0);
    } finally {
      o.close();
    }
    await seesAnOpen(t);
  });

  test('a broken cache file is ignored and removed, and made again', async (t) => {
    const root = tempDir(t);
    setCache(t, root);
    const entry = entryOf(root);
    fs.mkdirSync(path.dirname(entry), { recursive: true });
    fs.writeFileSync(entry, emptyBtf().subarray(0, 20));
    assert.equal(coreBtfFor(objectPath(def)), undefined);
    await coreBtfSettled();
    assert.ok(isWholeBtf(fs.readFileSync(entry)), 'made again');
    await seesAnOpen(t);
  });

  test('a FIFO where the file should be does not block the run', async (t) => {
    const root = tempDir(t);
    setCache(t, root);
    const entry = entryOf(root);
    fs.mkdirSync(path.dirname(entry), { recursive: true });
    execFileSync('mkfifo', [entry]);
    assert.equal(coreBtfFor(objectPath(def)), undefined);
    await coreBtfSettled();
    await seesAnOpen(t);
  });

  test('a cache folder others can write is not trusted', async (t) => {
    const root = tempDir(t);
    setCache(t, root);
    const entry = entryOf(root);
    fs.mkdirSync(path.dirname(entry), { recursive: true });
    execFileSync(bpftool!, ['gen', 'min_core_btf', '/sys/kernel/btf/vmlinux', entry, objectPath(def)]);
    assert.equal(coreBtfFor(objectPath(def)), entry, 'trusted while only root can write it');
    fs.chmodSync(path.dirname(entry), 0o777);
    assert.equal(coreBtfFor(objectPath(def)), undefined);
    fs.chmodSync(path.dirname(entry), 0o755);
    fs.chmodSync(entry, 0o666);
    assert.equal(coreBtfFor(objectPath(def)), undefined);
  });

  test('a well-formed BTF libbpf cannot relocate against: the load falls back to the full BTF and drops it', async (t) => {
    const root = tempDir(t);
    setCache(t, root);
    const entry = entryOf(root);
    fs.mkdirSync(path.dirname(entry), { recursive: true });
    fs.writeFileSync(entry, emptyBtf(), { mode: 0o644 });
    assert.equal(coreBtfFor(objectPath(def)), entry, 'it passes the file check');
    await seesAnOpen(t);
    assert.equal(fs.existsSync(entry), false, 'dropped, so the next run makes a good one');
  });

  test('a cache that cannot be written: the full BTF, no error', async (t) => {
    setCache(t, '/proc/gadget-run-no-such-cache');
    assert.equal(coreBtfFor(objectPath(def)), undefined);
    await coreBtfSettled();
    await seesAnOpen(t);
  });
});
