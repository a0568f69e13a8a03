/**
 * Kernels without /sys/kernel/btf/vmlinux: which BTF stands in for the
 * kernel's (--btf, GADGET_RUN_BTF, a btfgen folder), btfgen itself, and real
 * runs in a mount namespace where /sys/kernel/btf is an empty tmpfs — as on a
 * kernel built without CONFIG_DEBUG_INFO_BTF, except that the kernel itself
 * still has its BTF (so the refusals there are libbpf's and ours, which is
 * what a kernel without BTF gets too).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { isWholeBtf } from '../../src/ebpf/btf.ts';
import { btfgen, describeKernelInput } from '../../src/ebpf/btfgen.ts';
import { bpftool, sha256 } from '../../src/ebpf/core-btf.ts';
import { BTFGEN_INDEX, findInBtfgen, forgetKernelBtf, fullCoreBtf, kernelBtf, kernelBuildId, kernelKey, readBtfFile, SYSFS_BTF, whyNoKernelBtf } from '../../src/ebpf/kernel-btf.ts';
import { describeReason } from '../../src/ebpf/reasons.ts';
import { emptyBtf } from '../helpers/btf.ts';
import { objectDir } from '../helpers/kernel.ts';
import { tempDir, uniqueToken } from '../helpers/session.ts';
import { readJson, readNdjsonFile, runCli, writeRecipe } from '../runner/cli-helpers.ts';

const haveSysfsBtf = fs.existsSync(SYSFS_BTF) ? false : `this kernel has no ${SYSFS_BTF} to make test files from`;
const noBpftool = !bpftool() && 'bpftool is not installed (./scripts/setup installs it)';
/** Debian's kernels as scripts/vm.mjs fetches them: their uncompressed vmlinux carries .BTF */
const KERNEL_CACHE = process.env.GADGET_RUN_VM_CACHE ?? '/var/cache/gadget-run/kernels';
const cachedVmlinux = (() => {
  try {
    return fs.readdirSync(KERNEL_CACHE).map((r) => ({ release: r, file: path.join(KERNEL_CACHE, r, 'vmlinux') })).filter((k) => fs.existsSync(k.file));
  } catch {
    return [];
  }
})();
const noCachedKernel = !cachedVmlinux.length && `no kernel under ${KERNEL_CACHE} (node scripts/vm.mjs fetch 6.1)`;

function btfErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

/** A raw copy of this kernel's BTF, as a user would give it with --btf: `vmlinux.btf` in the test's folder. */
function hostBtfCopy(t: TestContext): string {
  const copy = path.join(tempDir(t), 'vmlinux.btf');
  fs.copyFileSync(SYSFS_BTF, copy);
  return copy;
}

/** GADGET_RUN_BTF* set for one test, and the resolution forgotten before and after. */
function withEnv(t: TestContext, env: Record<string, string | undefined>): void {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const set = (e: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(e)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    forgetKernelBtf();
  };
  set(env);
  t.after(() => set(before));
}

describe('kernel BTF files (no root)', () => {
  test('raw BTF and a vmlinux ELF are read; anything else says what it is', { skip: haveSysfsBtf }, (t) => {
    const dir = tempDir(t);
    const raw = readBtfFile(SYSFS_BTF);
    assert.equal(raw.elf, false);
    assert.equal(raw.bytes.length, fs.readFileSync(SYSFS_BTF).length);
    // an object file is an ELF with a .BTF section too
    const elf = readBtfFile(path.join(objectDir(), 'trace_exec.bpf.o'));
    assert.equal(elf.elf, true);
    assert.ok(isWholeBtf(elf.bytes));

    const text = path.join(dir, 'text');
    fs.writeFileSync(text, 'not BTF at all\n');
    assert.equal(btfErrorOf(() => readBtfFile(text)), 'neither raw BTF nor an ELF file');
    const cut = path.join(dir, 'cut.btf');
    fs.writeFileSync(cut, fs.readFileSync(SYSFS_BTF).subarray(0, 4096));
    assert.equal(btfErrorOf(() => readBtfFile(cut)), 'truncated or damaged BTF');
    assert.match(btfErrorOf(() => readBtfFile('/bin/true')), /^an ELF file without a \.BTF section .*pahole --btf_encode_detached/);
    assert.equal(btfErrorOf(() => readBtfFile(path.join(dir, 'missing'))), 'cannot read it (ENOENT)');
    assert.equal(btfErrorOf(() => readBtfFile(dir)), 'not a regular file');
  });

  test('which kernel a file is: this one, RELEASE.btf, or what a vmlinux says of itself', { skip: haveSysfsBtf }, (t) => {
    const dir = tempDir(t);
    assert.deepEqual(describeKernelInput(SYSFS_BTF), { file: SYSFS_BTF, release: os.release(), ...(kernelBuildId() ? { buildId: kernelBuildId() } : {}) });
    const named = path.join(dir, '5.15.0-91-generic.btf');
    fs.writeFileSync(named, emptyBtf());
    assert.deepEqual(describeKernelInput(named), { file: named, release: '5.15.0-91-generic' });
    const anon = path.join(dir, 'vmlinux.btf');
    fs.writeFileSync(anon, emptyBtf());
    assert.match(btfErrorOf(() => describeKernelInput(anon)), /name it RELEASE\.btf, after that kernel's uname -r \(not "vmlinux\.btf"\)/);
    assert.match(btfErrorOf(() => describeKernelInput(path.join(objectDir(), 'trace_exec.bpf.o'))), /without a "Linux version" banner/);
  });

  test("a Debian kernel's vmlinux names its release and build id", { skip: noCachedKernel }, () => {
    for (const k of cachedVmlinux) {
      const d = describeKernelInput(k.file);
      assert.equal(d.release, k.release);
      const notes = execFileSync('readelf', ['-n', k.file], { encoding: 'utf8' });
      assert.equal(d.buildId, /Build ID: ([0-9a-f]+)/.exec(notes)?.[1], `${k.file}: the build id readelf sees`);
    }
  });

  test('a btfgen folder: found by release; refused for another build, another writer, or damage', (t) => {
    const dir = tempDir(t);
    fs.chmodSync(dir, 0o755);
    const running = kernelBuildId();
    const index = (kernels: Record<string, { file: string; buildId?: string }>) =>
      fs.writeFileSync(path.join(dir, BTFGEN_INDEX), JSON.stringify({ format: 1, objects: { 'x.bpf.o': 'aa' }, kernels }));
    fs.writeFileSync(path.join(dir, '6.1.0-57-amd64.btf'), emptyBtf());

    assert.deepEqual(findInBtfgen(path.join(dir, 'nothing-here'), '6.1.0-57-amd64'), { why: 'no-folder' });
    assert.equal((findInBtfgen(dir, '6.1.0-57-amd64') as { why: string }).why, 'bad-folder', 'no index');
    index({ '6.1.0-57-amd64': { file: '6.1.0-57-amd64.btf' } });
    const found = findInBtfgen(dir, '6.1.0-57-amd64');
    assert.ok('btf' in found, JSON.stringify(found));
    assert.deepEqual(found.btf, { kind: 'btfgen', path: path.join(dir, '6.1.0-57-amd64.btf'), dir, release: '6.1.0-57-amd64', objects: ['aa'], sha: sha256(path.join(dir, '6.1.0-57-amd64.btf')) });
    assert.deepEqual(findInBtfgen(dir, '6.12.118+deb12-amd64'), { why: 'no-entry' });

    if (running) {
      index({ '6.1.0-57-amd64': { file: '6.1.0-57-amd64.btf', buildId: 'ff'.repeat(20) } });
      assert.deepEqual(findInBtfgen(dir, '6.1.0-57-amd64'), { why: 'other-build', detail: `made from build ${'ff'.repeat(20)}, this kernel is ${running}` });
      index({ '6.1.0-57-amd64': { file: '6.1.0-57-amd64.btf', buildId: running } });
      assert.ok('btf' in findInBtfgen(dir, '6.1.0-57-amd64'), 'the same build');
    }
    index({ '6.1.0-57-amd64': { file: '../6.1.0-57-amd64.btf' } });
    assert.equal((findInBtfgen(dir, '6.1.0-57-amd64') as { why: string }).why, 'bad-folder', 'a path, not a file name');
    index({ '6.1.0-57-amd64': { file: '6.1.0-57-amd64.btf' } });
    fs.writeFileSync(path.join(dir, '6.1.0-57-amd64.btf'), emptyBtf().subarray(0, 20));
    assert.deepEqual(findInBtfgen(dir, '6.1.0-57-amd64'), { why: 'bad-folder', detail: '6.1.0-57-amd64.btf: not whole BTF' });
    fs.writeFileSync(path.join(dir, '6.1.0-57-amd64.btf'), emptyBtf());
    fs.chmodSync(path.join(dir, '6.1.0-57-amd64.btf'), 0o666);
    assert.deepEqual(findInBtfgen(dir, '6.1.0-57-amd64'), { why: 'untrusted', detail: '6.1.0-57-amd64.btf: others may write it' });
    fs.chmodSync(path.join(dir, '6.1.0-57-amd64.btf'), 0o644);
    fs.chmodSync(dir, 0o777);
    assert.equal((findInBtfgen(dir, '6.1.0-57-amd64') as { why: string }).why, 'untrusted', 'a folder others may write');
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, BTFGEN_INDEX), '{"format": 2}');
    assert.deepEqual(findInBtfgen(dir, '6.1.0-57-amd64'), { why: 'bad-folder', detail: `${BTFGEN_INDEX}: not btfgen's format 1` });
  });

  test("GADGET_RUN_BTF stands in for the kernel's own, under its own cache key; a bad one is the reason", { skip: haveSysfsBtf }, (t) => {
    const copy = hostBtfCopy(t);
    withEnv(t, { GADGET_RUN_BTF: undefined });
    assert.deepEqual(kernelBtf(), { kind: 'sysfs', path: SYSFS_BTF });
    assert.equal(fullCoreBtf(), undefined, "the kernel's own: libbpf finds it");
    const ownKey = kernelKey();

    withEnv(t, { GADGET_RUN_BTF: copy });
    assert.deepEqual(kernelBtf(), { kind: 'file', path: copy, from: 'GADGET_RUN_BTF', sha: sha256(copy) });
    assert.equal(fullCoreBtf(), copy);
    assert.equal(kernelKey(), `${ownKey}-${sha256(copy).slice(0, 16)}`, 'caches made with another BTF are not shared');

    withEnv(t, { GADGET_RUN_BTF: '/etc/hostname' });
    assert.equal(kernelBtf(), undefined);
    const why = whyNoKernelBtf();
    assert.deepEqual(why, { kind: 'bad-btf', file: '/etc/hostname', from: 'GADGET_RUN_BTF', error: 'neither raw BTF nor an ELF file' });
    assert.equal(describeReason(why!), 'needs the kernel BTF that GADGET_RUN_BTF names: /etc/hostname: neither raw BTF nor an ELF file; give the vmlinux BTF of the running kernel (uname -r), raw or a vmlinux ELF with a .BTF section');
  });
});

describe('btfgen', { skip: haveSysfsBtf || noBpftool }, () => {
  test('one minimized BTF per kernel for every object, an index the loader reads, kept or dropped with the objects', async (t) => {
    const dir = tempDir(t);
    const out = path.join(dir, 'btf');
    const objects = objectDir();
    const named = path.join(dir, '9.9.9-test.btf');
    fs.copyFileSync(SYSFS_BTF, named);
    const elf = cachedVmlinux[0];

    const r = await btfgen([SYSFS_BTF, named, ...(elf ? [elf.file] : [])], out, objects);
    const objectFiles = fs.readdirSync(objects).filter((f) => f.endsWith('.bpf.o')).sort();
    assert.deepEqual(r.objects, objectFiles);
    assert.deepEqual(r.written.map((k) => k.release), [os.release(), '9.9.9-test', ...(elf ? [elf.release] : [])]);
    const index = readJson(path.join(out, BTFGEN_INDEX));
    assert.deepEqual(index.objects, Object.fromEntries(objectFiles.map((f) => [f, sha256(path.join(objects, f))])));
    assert.deepEqual(index.kernels[os.release()], { file: `${os.release()}.btf`, ...(kernelBuildId() ? { buildId: kernelBuildId() } : {}) });
    assert.deepEqual(index.kernels['9.9.9-test'], { file: '9.9.9-test.btf' }, 'raw BTF has no build id');
    for (const k of r.written) {
      const bytes = fs.readFileSync(k.out);
      assert.ok(isWholeBtf(bytes), k.out);
      assert.ok(bytes.length < 64 * 1024, `${k.release}: ${bytes.length} bytes, minimized`);
      assert.equal(fs.statSync(k.out).mode & 0o777, 0o644);
    }
    const found = findInBtfgen(out, os.release());
    assert.ok('btf' in found && found.btf.kind === 'btfgen' && found.btf.objects.length === objectFiles.length, JSON.stringify(found));

    // the same objects: earlier kernels stay
    const again = await btfgen([named], out, objects);
    assert.deepEqual(again.kept.sort(), [os.release(), ...(elf ? [elf.release] : [])].sort());
    // other objects: the kernels made for the old ones go
    const fewer = path.join(dir, 'objects');
    fs.mkdirSync(fewer);
    fs.copyFileSync(path.join(objects, 'trace_exec.bpf.o'), path.join(fewer, 'trace_exec.bpf.o'));
    const other = await btfgen([named], out, fewer);
    assert.deepEqual(other.dropped.sort(), [os.release(), ...(elf ? [elf.release] : [])].sort());
    assert.deepEqual(fs.readdirSync(out).sort(), ['9.9.9-test.btf', BTFGEN_INDEX]);

    const twin = path.join(dir, 'twin', '9.9.9-test.btf');
    fs.mkdirSync(path.dirname(twin));
    fs.copyFileSync(named, twin);
    await assert.rejects(btfgen([named, twin], out, objects), /both 9\.9\.9-test: one BTF per kernel release in a folder/);
  });
});

/**
 * The CLI in a private mount namespace whose /sys/kernel/btf is an empty
 * tmpfs (unshare execs sh, which execs the CLI: it keeps the pid the leak
 * check follows). Caches are the test's own.
 */
function runHidden(t: TestContext, args: string[], env: Record<string, string> = {}) {
  const caches = tempDir(t);
  return runCli(args, {
    wrap: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /sys/kernel/btf && exec "$@"', 'sh'],
    env: { GADGET_RUN_PROBE_CACHE: path.join(caches, 'probes'), GADGET_RUN_BTF_CACHE: path.join(caches, 'btf'), GADGET_RUN_BTF: undefined, GADGET_RUN_BTF_DIR: undefined, ...env },
  });
}

const notRootOrNoBtf = process.getuid?.() !== 0 ? 'needs root: mount namespaces and BPF programs' : haveSysfsBtf;

describe('a kernel without /sys/kernel/btf (hidden in a mount namespace)', { skip: notRootOrNoBtf }, () => {
  /** trace/exec around a real exec, exactly: the recipe asserts it, the test reads the event */
  async function execRun(t: TestContext, args: string[], env: Record<string, string> = {}) {
    const dir = tempDir(t);
    fs.chmodSync(dir, 0o755);
    const token = uniqueToken('btf');
    const recipe = writeRecipe(dir, 'exec.yaml', `name: btf-exec
run: /bin/echo ${token}
steps:
  - { id: execs, gadget: trace/exec }
assertions:
  - name: the echo was traced
    expr: '$count(steps.execs[args[1] = "${token}"]) = 1'
`);
    const out = path.join(dir, 'out');
    const r = await runHidden(t, ['run', recipe, '--out', out, ...args], env);
    return { r, out, token };
  }

  test('without --btf: could not trace, saying to pass --btf or GADGET_RUN_BTF and where to get one', async (t) => {
    const { r, out } = await execRun(t, []);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.equal(readJson(path.join(out, 'summary.json')).status, 'could_not_trace');
    assert.match(r.stderr, /trace\/exec: unsupported here — needs the kernel's BTF \(its types, for CO-RE\): \/sys\/kernel\/btf\/vmlinux is missing \(a kernel built without CONFIG_DEBUG_INFO_BTF\); give this kernel's vmlinux BTF with --btf FILE or GADGET_RUN_BTF=FILE \(BTFHub's archive/);
  });

  test('with --btf FILE (raw BTF): the exec is traced, exactly; a file that is not BTF is a bad command line', async (t) => {
    const copy = hostBtfCopy(t);
    const { r, out, token } = await execRun(t, ['--btf', copy]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const echo = readNdjsonFile(path.join(out, 'raw/execs.ndjson')).filter((e) => e.args?.[1] === token);
    assert.equal(echo.length, 1);
    assert.deepEqual({ comm: echo[0].comm, args: echo[0].args, ret: echo[0].ret, uid: echo[0].uid }, { comm: 'echo', args: ['/bin/echo', token], ret: 0, uid: 0 });

    const bad = await execRun(t, ['--btf', '/etc/hostname']);
    assert.equal(bad.r.code, 2);
    assert.equal(bad.r.stderr, 'gadget-run: --btf /etc/hostname: neither raw BTF nor an ELF file\n');
  });

  test('with a btfgen folder in GADGET_RUN_BTF_DIR: traced; one made for other objects: unsupported, saying so', async (t) => {
    const dir = tempDir(t);
    fs.chmodSync(dir, 0o755);
    const folder = path.join(dir, 'btf');
    await btfgen([SYSFS_BTF], folder, objectDir());
    const { r, out, token } = await execRun(t, [], { GADGET_RUN_BTF_DIR: folder });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(readNdjsonFile(path.join(out, 'raw/execs.ndjson')).filter((e) => e.args?.[1] === token && e.comm === 'echo' && e.ret === 0).length, 1);

    const stale = path.join(dir, 'stale');
    const fewer = path.join(dir, 'objects');
    fs.mkdirSync(fewer);
    fs.copyFileSync(path.join(objectDir(), 'trace_open.bpf.o'), path.join(fewer, 'trace_open.bpf.o'));
    await btfgen([SYSFS_BTF], stale, fewer);
    const refused = await execRun(t, [], { GADGET_RUN_BTF_DIR: stale });
    assert.equal(refused.r.code, 3, refused.r.stdout + refused.r.stderr);
    assert.match(refused.r.stderr, new RegExp(`trace/exec: unsupported here — needs minimized BTF for trace_exec\\.bpf\\.o: the btfgen folder ${stale} was made for other builds of the objects; run gadget-run btfgen again`));
  });

  test("gadgets --btf: what needs the kernel's own BTF (tp_btf, iterators, kfuncs) is unsupported, naming the hooks; the rest is ok", async (t) => {
    const copy = hostBtfCopy(t);
    const r = await runHidden(t, ['gadgets', '--json', '--btf', copy]);
    assert.equal(r.code, 0, r.stderr);
    const rows = new Map((JSON.parse(r.stdout) as { id: string; supported: boolean; reason?: string }[]).map((g) => [g.id, g]));
    assert.equal(rows.get('trace/exec')?.supported, true);
    assert.equal(rows.get('trace/open')?.supported, true);
    const own = "/sys/kernel/btf/vmlinux is missing (the kernel checks tp_btf, iterator and fentry programs and kfuncs against its own BTF; a --btf file serves CO-RE relocations only); a kernel built with CONFIG_DEBUG_INFO_BTF=y has it";
    assert.equal(rows.get('snapshot/process')?.reason, `snapshot/process: unsupported here — needs the kernel's own BTF for iter/task: ${own}`);
    const unsupported = [...rows.values()].filter((g) => !g.supported);
    assert.ok(unsupported.length > 0);
    // a gadget with hook variants names each one's reason: at least one is the kernel's own BTF
    for (const g of unsupported) assert.match(g.reason!, /the kernel's own BTF for (tp_btf\/|iter\/|kfunc |fentry\/)/, g.id);
  });
});
