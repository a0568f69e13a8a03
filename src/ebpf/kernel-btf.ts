/**
 * Which BTF describes the running kernel's types: what CO-RE relocates
 * against (core-btf.ts minimizes it; prepare.ts and load-probe.ts hand it to
 * libbpf as bpf_object_open_opts.btf_custom_path) and what the probes read.
 * The first of:
 *
 *   1. --btf FILE (useBtfFile), else GADGET_RUN_BTF=FILE: this kernel's
 *      vmlinux BTF, raw or a vmlinux ELF with a .BTF section;
 *   2. /sys/kernel/btf/vmlinux, the kernel's own (CONFIG_DEBUG_INFO_BTF=y);
 *   3. a folder written by `gadget-run btfgen` (btfgen.ts) that has this
 *      kernel's release: $GADGET_RUN_BTF_DIR, then btf/ in the package.
 *
 * A file stands in for the kernel's BTF in CO-RE relocations only. What the
 * kernel checks against its own BTF — tp_btf, iterator, fentry/fexit and LSM
 * programs, kfuncs — needs the kernel to have one, and libbpf to find it
 * (/sys/kernel/btf/vmlinux): load-probe.ts says `unsupported` for those
 * programs on a kernel without it, before libbpf tries.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isWholeBtf } from './btf.ts';
import { gnuBuildId, readElfSections } from './elf.ts';
import type { BtfgenMiss, Reason } from './reasons.ts';
import { packageRoot } from '../util/package-root.ts';
import { readTrusted, trusted } from '../util/trusted.ts';

export const SYSFS_BTF = '/sys/kernel/btf/vmlinux';
/** btfgen's folder: DIR/index.json names, per kernel release, DIR/<release>.btf and the objects it covers */
export const BTFGEN_INDEX = 'index.json';
export const BTFGEN_FORMAT = 1;
/** a raw vmlinux BTF is 4–10 MB; a btfgen file a few KB; an index a few KB per kernel */
const MAX_RAW_BYTES = 256 * 1024 * 1024;
const MAX_BTFGEN_BYTES = 4 * 1024 * 1024;
const MAX_INDEX_BYTES = 4 * 1024 * 1024;

export type KernelBtf =
  /** the kernel's own */
  | { kind: 'sysfs'; path: string }
  /** a vmlinux BTF of this kernel given by `from` (--btf, GADGET_RUN_BTF) */
  | { kind: 'file'; path: string; from: string; sha: string }
  /** a btfgen folder's minimized BTF for this release, made for the objects whose sha-256 `objects` lists */
  | { kind: 'btfgen'; path: string; dir: string; release: string; objects: string[]; sha: string };

export interface BtfgenIndex {
  format: number;
  /** object file name → sha-256 of its content, for every object the minimized BTFs cover */
  objects: Record<string, string>;
  /** kernel release (uname -r) → its minimized BTF (a file name in the folder) and the build id it was made from */
  kernels: Record<string, { file: string; buildId?: string }>;
}

/** A file that is not the kernel BTF it was given as: says what is wrong with it. */
export class BtfFileError extends Error {}

let given: { file: string; from: string } | undefined;
let resolved: { btf?: KernelBtf; why?: Reason } | undefined;
let buildIdCached: string | null | undefined;
let keyCached: string | undefined;

/** `--btf FILE`: use it for this kernel's BTF (checked now: a BtfFileError says why not). */
export function useBtfFile(file: string, from: string): void {
  const abs = path.resolve(file);
  readRunningKernelBtf(abs);
  given = { file: abs, from };
  forgetKernelBtf();
}

/** The file useBtfFile was given (absolute), if any. */
export function btfFileInUse(): string | undefined {
  return given?.file;
}

/** Resolve again (tests; after useBtfFile). */
export function forgetKernelBtf(): void {
  resolved = undefined;
  keyCached = undefined;
}

/** The BTF of this kernel that CO-RE relocates against, or undefined (whyNoKernelBtf says why). */
export function kernelBtf(): KernelBtf | undefined {
  return resolve().btf;
}

export function whyNoKernelBtf(): Reason | undefined {
  return resolve().why;
}

/** Whether libbpf and the kernel have the kernel's own BTF: tp_btf, iter, fentry programs and kfuncs need it. */
export function hasOwnBtf(): boolean {
  return fs.existsSync(SYSFS_BTF);
}

/**
 * The BTF file to relocate against when no minimized one is at hand:
 * undefined for the kernel's own (libbpf finds it), else the given file or
 * the btfgen folder's.
 */
export function fullCoreBtf(): string | undefined {
  const btf = kernelBtf();
  return btf && btf.kind !== 'sysfs' ? btf.path : undefined;
}

/** The whole vmlinux BTF, to look types up by name; undefined with a btfgen one (it holds only what our objects relocate). */
export function kernelBtfTypes(): Buffer | undefined {
  const btf = kernelBtf();
  if (!btf || btf.kind === 'btfgen') return undefined;
  return btf.kind === 'sysfs' ? fs.readFileSync(btf.path) : readRunningKernelBtf(btf.path);
}

/** The running kernel's GNU build id, from /sys/kernel/notes. */
export function kernelBuildId(): string | undefined {
  if (buildIdCached === undefined) {
    try {
      buildIdCached = gnuBuildId(fs.readFileSync('/sys/kernel/notes')) ?? null;
    } catch {
      buildIdCached = null;
    }
  }
  return buildIdCached ?? undefined;
}

/**
 * What per-kernel caches are valid for: the kernel's build id (else a hash
 * of its BTF), and when the BTF is not the kernel's own, a hash of the one
 * used (another --btf file relocates differently).
 */
export function kernelKey(): string {
  if (keyCached === undefined) {
    const btf = kernelBtf();
    const btfSha = () => (!btf ? sha(Buffer.from(`${os.release()} ${os.version()}`)) : btf.kind === 'sysfs' ? sha(fs.readFileSync(btf.path)) : btf.sha);
    const id = kernelBuildId() ?? `btf-${btfSha().slice(0, 40)}`;
    keyCached = btf && btf.kind !== 'sysfs' ? `${id}-${btf.sha.slice(0, 16)}` : id;
  }
  return keyCached;
}

/**
 * A vmlinux BTF file's BTF bytes and, for an ELF, its build id; throws a
 * BtfFileError saying what is wrong with it.
 */
export function readBtfFile(file: string): { bytes: Buffer; elf: boolean; buildId?: string } {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new BtfFileError(`cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!st.isFile()) throw new BtfFileError('not a regular file');
  const head = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt32BE(0) === 0x7f454c46) {
    let elf;
    try {
      elf = readElfSections(file, ['.BTF']);
    } catch (err) {
      throw new BtfFileError((err as Error).message);
    }
    const bytes = elf.sections.get('.BTF');
    if (!bytes) throw new BtfFileError('an ELF file without a .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF: make BTF from its debug info with pahole --btf_encode_detached)');
    if (!isWholeBtf(bytes)) throw new BtfFileError('its .BTF section is not whole BTF');
    return { bytes, elf: true, ...(elf.buildId ? { buildId: elf.buildId } : {}) };
  }
  if (head.readUInt16LE(0) !== 0xeb9f) throw new BtfFileError('neither raw BTF nor an ELF file');
  if (st.size > MAX_RAW_BYTES) throw new BtfFileError(`${st.size} bytes: larger than any vmlinux BTF`);
  const bytes = fs.readFileSync(file);
  if (!isWholeBtf(bytes)) throw new BtfFileError('truncated or damaged BTF');
  return { bytes, elf: false };
}

/**
 * readBtfFile, for the running kernel: a vmlinux whose build id is another
 * kernel's is refused (its types would relocate wrong, without any error).
 * Raw BTF carries no build id: it is taken on trust.
 */
function readRunningKernelBtf(file: string): Buffer {
  const r = readBtfFile(file);
  const running = kernelBuildId();
  if (r.buildId && running && r.buildId !== running) {
    throw new BtfFileError(`the vmlinux of another kernel build (build id ${r.buildId}; the running kernel's is ${running})`);
  }
  return r.bytes;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function resolve(): { btf?: KernelBtf; why?: Reason } {
  resolved ??= find();
  return resolved;
}

function find(): { btf?: KernelBtf; why?: Reason } {
  const fromEnv = process.env.GADGET_RUN_BTF ? { file: path.resolve(process.env.GADGET_RUN_BTF), from: 'GADGET_RUN_BTF' } : undefined;
  const choice = given ?? fromEnv;
  if (choice) {
    try {
      return { btf: { kind: 'file', path: choice.file, from: choice.from, sha: sha(readRunningKernelBtf(choice.file)) } };
    } catch (err) {
      if (!(err instanceof BtfFileError)) throw err;
      return { why: { kind: 'bad-btf', file: choice.file, from: choice.from, error: err.message } };
    }
  }
  if (hasOwnBtf()) return { btf: { kind: 'sysfs', path: SYSFS_BTF } };
  const release = os.release();
  const misses: BtfgenMiss[] = [];
  for (const { dir, named } of btfgenDirs()) {
    const r = findInBtfgen(dir, release);
    if ('btf' in r) return { btf: r.btf };
    if (named || r.why !== 'no-folder') misses.push({ dir, ...r });
  }
  return { why: { kind: 'no-btf', path: SYSFS_BTF, release, ...(misses.length ? { dirs: misses } : {}) } };
}

/** Where btfgen folders are looked for; `named`: the user set it, so its absence is worth saying. */
export function btfgenDirs(): { dir: string; named: boolean }[] {
  const env = process.env.GADGET_RUN_BTF_DIR;
  return [...(env ? [{ dir: path.resolve(env), named: true }] : []), { dir: path.join(packageRoot(), 'btf'), named: false }];
}

/** A btfgen folder's index, when the folder and it are only root's or ours to write, and well-formed; else why not. */
export function readBtfgenIndex(dir: string): { index: BtfgenIndex } | { why: BtfgenMiss['why']; detail?: string } {
  let dirSt: fs.Stats;
  try {
    dirSt = fs.statSync(dir);
  } catch {
    return { why: 'no-folder' };
  }
  if (!dirSt.isDirectory()) return { why: 'no-folder' };
  if (!trusted(dirSt)) return { why: 'untrusted', detail: dir };
  const file = path.join(dir, BTFGEN_INDEX);
  const text = readTrusted(file, MAX_INDEX_BYTES);
  if (!Buffer.isBuffer(text)) return { why: missOf(text.problem), detail: `${BTFGEN_INDEX}: ${text.detail}` };
  try {
    const v = JSON.parse(text.toString('utf8')) as BtfgenIndex;
    const strings = (o: unknown) => typeof o === 'object' && o !== null && Object.values(o).every((x) => typeof x === 'string');
    const kernelsOk = typeof v.kernels === 'object' && v.kernels !== null && Object.values(v.kernels).every((k) => typeof k?.file === 'string' && (k.buildId === undefined || typeof k.buildId === 'string'));
    if (v.format !== BTFGEN_FORMAT || !strings(v.objects) || !kernelsOk) return { why: 'bad-folder', detail: `${BTFGEN_INDEX}: not btfgen's format ${BTFGEN_FORMAT}` };
    return { index: v };
  } catch (err) {
    return { why: 'bad-folder', detail: `${BTFGEN_INDEX}: ${(err as Error).message}` };
  }
}

/** The btfgen folder's BTF for `release` (and this kernel's build id), or why not. */
export function findInBtfgen(dir: string, release: string): { btf: KernelBtf } | Omit<BtfgenMiss, 'dir'> {
  const r = readBtfgenIndex(dir);
  if ('why' in r) return r;
  const entry = Object.hasOwn(r.index.kernels, release) ? r.index.kernels[release] : undefined;
  if (!entry) return { why: 'no-entry' };
  const running = kernelBuildId();
  if (entry.buildId && running && entry.buildId !== running) return { why: 'other-build', detail: `made from build ${entry.buildId}, this kernel is ${running}` };
  if (path.basename(entry.file) !== entry.file) return { why: 'bad-folder', detail: `${BTFGEN_INDEX}: ${JSON.stringify(entry.file)} is not a file name` };
  const file = path.join(dir, entry.file);
  const bytes = readTrusted(file, MAX_BTFGEN_BYTES);
  if (!Buffer.isBuffer(bytes)) return { why: missOf(bytes.problem), detail: `${entry.file}: ${bytes.detail}` };
  if (!isWholeBtf(bytes)) return { why: 'bad-folder', detail: `${entry.file}: not whole BTF` };
  return { btf: { kind: 'btfgen', path: file, dir, release, objects: Object.values(r.index.objects), sha: sha(bytes) } };
}

const missOf = (problem: 'untrusted' | 'unreadable' | 'too-large'): BtfgenMiss['why'] => (problem === 'untrusted' ? 'untrusted' : 'bad-folder');
