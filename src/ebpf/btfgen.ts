/**
 * `gadget-run btfgen`: minimized BTF for kernels that have none of their
 * own, made ahead of time and shipped with gadget-run (Inspektor Gadget's
 * BTFGen does the same for its gadgets). For each kernel's vmlinux BTF,
 * `bpftool gen min_core_btf` keeps what every object relocates against — a
 * few KB instead of 5 MB — into
 *
 *   DIR/<release>.btf    one per kernel release (uname -r), for all the objects
 *   DIR/index.json       { format, objects: { name: sha-256 }, kernels: { release: { file, buildId? } } }
 *
 * kernel-btf.ts reads it: on a kernel without /sys/kernel/btf/vmlinux it
 * takes DIR/$(uname -r).btf when the index has that release and, where both
 * are known, the same build id; load-probe.ts refuses an object whose hash
 * the index does not list (a minimized BTF made for another build of it may
 * lack a type without any error).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isWholeBtf } from './btf.ts';
import { bpftool, sha256 } from './core-btf.ts';
import { readElfSections } from './elf.ts';
import { BTFGEN_FORMAT, BTFGEN_INDEX, BtfFileError, kernelBuildId, readBtfFile, readBtfgenIndex, SYSFS_BTF, type BtfgenIndex } from './kernel-btf.ts';
import { mkdirs } from '../util/mkdirs.ts';
import { trusted } from '../util/trusted.ts';

/** what `uname -r` prints: a version, then the distribution's suffix */
const RELEASE = /^[0-9]+\.[0-9]+[0-9A-Za-z._+~-]*$/;
/** min_core_btf takes about a second for our objects; a hang is not waited out */
const BPFTOOL_TIMEOUT_MS = 120_000;

/** A kernel's BTF to minimize: the file, and the kernel it describes. */
export interface KernelInput {
  file: string;
  release: string;
  buildId?: string;
}

export interface BtfgenResult {
  dir: string;
  objects: string[];
  written: (KernelInput & { out: string; bytes: number })[];
  /** kernels of an earlier btfgen into DIR that are still valid (the same objects) */
  kept: string[];
  /** kernels of an earlier btfgen into DIR for other objects, removed */
  dropped: string[];
  /** DIR may be written by others: the loader will not read it */
  untrusted: boolean;
}

/**
 * Which kernel a BTF file describes: /sys/kernel/btf/vmlinux is this one; a
 * vmlinux ELF says its release (its "Linux version" banner) and build id; a
 * raw BTF carries neither, so its name must be RELEASE.btf (as BTFHub names
 * them). Throws a BtfFileError.
 */
export function describeKernelInput(file: string): KernelInput {
  const abs = path.resolve(file);
  const r = readBtfFile(abs);
  if (fs.realpathSync(abs) === SYSFS_BTF) {
    const buildId = kernelBuildId();
    return { file: abs, release: os.release(), ...(buildId ? { buildId } : {}) };
  }
  if (r.elf) {
    const rodata = readElfSections(abs, ['.rodata']).sections.get('.rodata');
    const release = rodata && /Linux version (\S+) \(/.exec(rodata.toString('latin1'))?.[1];
    if (!release || !RELEASE.test(release)) throw new BtfFileError('a vmlinux without a "Linux version" banner in its .rodata: not a kernel image');
    return { file: abs, release, ...(r.buildId ? { buildId: r.buildId } : {}) };
  }
  const release = path.basename(abs).replace(/\.btf$/, '');
  if (!RELEASE.test(release)) throw new BtfFileError(`raw BTF says not which kernel it is: name it RELEASE.btf, after that kernel's uname -r (not ${JSON.stringify(path.basename(abs))})`);
  return { file: abs, release };
}

/**
 * Minimize each kernel's BTF for every *.bpf.o in `objectDir` into `outDir`.
 * Kernels an earlier btfgen wrote there for the same objects stay; those
 * made for other objects go.
 */
export async function btfgen(files: string[], outDir: string, objectDir: string): Promise<BtfgenResult> {
  const tool = bpftool();
  if (!tool) throw new Error('btfgen needs bpftool (Debian: apt-get install bpftool)');
  const objectFiles = fs.readdirSync(objectDir).filter((f) => f.endsWith('.bpf.o')).sort();
  if (!objectFiles.length) throw new Error(`no *.bpf.o in ${objectDir}: build the objects with \`make -C bpf\` (or point --objects at them)`);
  const objects: Record<string, string> = Object.fromEntries(objectFiles.map((f) => [f, sha256(path.join(objectDir, f))]));

  const inputs: KernelInput[] = [];
  for (const f of files) {
    let k: KernelInput;
    try {
      k = describeKernelInput(f);
    } catch (err) {
      if (err instanceof BtfFileError) throw new BtfFileError(`${f}: ${err.message}`);
      throw err;
    }
    const twin = inputs.find((i) => i.release === k.release);
    if (twin) throw new BtfFileError(`${f} and ${twin.file} are both ${k.release}: one BTF per kernel release in a folder`);
    inputs.push(k);
  }

  mkdirs(outDir, 0o755);
  const earlier = readBtfgenIndex(outDir);
  const before = 'index' in earlier ? earlier.index : undefined;
  const sameObjects = !!before && JSON.stringify(before.objects) === JSON.stringify(objects);
  const index: BtfgenIndex = { format: BTFGEN_FORMAT, objects, kernels: sameObjects ? { ...before.kernels } : {} };
  const dropped = sameObjects || !before ? [] : Object.keys(before.kernels).filter((r) => !inputs.some((i) => i.release === r));
  for (const r of dropped) fs.rmSync(path.join(outDir, path.basename(before!.kernels[r].file)), { force: true });
  const kept = Object.keys(index.kernels).filter((r) => !inputs.some((i) => i.release === r));

  const written: BtfgenResult['written'] = [];
  for (const k of inputs) {
    const name = `${k.release}.btf`;
    const out = path.join(outDir, name);
    await writeWhole(out, async (tmp) => {
      await promisify(execFile)(tool, ['gen', 'min_core_btf', k.file, tmp, ...objectFiles.map((f) => path.join(objectDir, f))], { timeout: BPFTOOL_TIMEOUT_MS });
      if (!isWholeBtf(fs.readFileSync(tmp))) throw new Error(`bpftool gen min_core_btf ${k.file}: the output is not whole BTF`);
    });
    index.kernels[k.release] = { file: name, ...(k.buildId ? { buildId: k.buildId } : {}) };
    written.push({ ...k, out, bytes: fs.statSync(out).size });
  }
  await writeWhole(path.join(outDir, BTFGEN_INDEX), async (tmp) => fs.writeFileSync(tmp, JSON.stringify(index, null, 2) + '\n'));
  return { dir: outDir, objects: objectFiles, written, kept, dropped, untrusted: !trusted(fs.statSync(outDir)) };
}

/** Make `file` through a temporary beside it, 0644, renamed into place: a reader sees a whole file or the old one. */
async function writeWhole(file: string, make: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await make(tmp);
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
