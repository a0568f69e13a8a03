/**
 * Minimized CO-RE BTF, one per object and kernel: what `bpftool gen
 * min_core_btf` keeps of the kernel's BTF (/sys/kernel/btf/vmlinux, or the
 * --btf file: kernel-btf.ts) for the types and members
 * an object's CO-RE relocations touch (a few hundred bytes instead of 5 MB).
 * libbpf relocates against it (bpf_object_open_opts.btf_custom_path) instead
 * of parsing the whole vmlinux BTF at every load: about half of a load's
 * time (bench/startup.ts). Nothing of the target kernel is known at build
 * time, so the first load of an object on a kernel uses the full BTF and
 * starts bpftool in the background; later runs find the file in
 *
 *   $GADGET_RUN_BTF_CACHE (default /var/cache/gadget-run/btf)/<kernel key>/<sha-256 of the object>.btf
 *
 * (the kernel key: kernel-btf.ts kernelKey, its build id, with a hash of the
 * --btf file when there is one). A btfgen folder's BTF is minimized already:
 * it is used as it is.
 * The content hash keys it, never the object's path or mtime: a stale
 * minimized BTF would answer "no such field" to a newer object's
 * bpf_core_field_exists() without any error. A cache file is used only when
 * it lives in a folder only root (or we) can write, is a regular file of
 * ours, and is well-formed BTF; anything else is ignored and the load takes
 * the full BTF, as it does without bpftool or with GADGET_RUN_BTF_CACHE=off.
 * prepare.ts retries a load that fails with one on the full BTF (kernel-btf.ts
 * fullCoreBtf).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isWholeBtf } from './btf.ts';
import { kernelBtf, kernelKey } from './kernel-btf.ts';
import { mkdirs } from '../util/mkdirs.ts';
import { readTrusted } from '../util/trusted.ts';

const DEFAULT_CACHE = '/var/cache/gadget-run/btf';
const BPFTOOL_CANDIDATES = ['/usr/sbin/bpftool', '/usr/bin/bpftool', '/sbin/bpftool', '/usr/local/sbin/bpftool'];
/** minimized BTFs are a few KB; anything this large is not one */
const MAX_BYTES = 4 * 1024 * 1024;
/**
 * bpftool runs in a fraction of a second; one that hangs is killed and the
 * cache left alone. The process waits for it before exiting (after the run's
 * report), so that a short first run still leaves the cache behind.
 */
const BPFTOOL_TIMEOUT_MS = 10_000;
/** a temporary file older than this was left by a process that died while bpftool ran */
const STALE_TMP_MS = 10 * 60_000;
/**
 * Every rebuild of an object is a new entry: past this many in a kernel's
 * folder the oldest go (a few KB each), and so do other kernels' folders
 * untouched this long.
 */
export const MAX_ENTRIES = 256;
const STALE_KERNEL_MS = 30 * 24 * 3600_000;

/** The cache folder, or undefined when GADGET_RUN_BTF_CACHE=off. */
export function cacheRoot(): string | undefined {
  const v = process.env.GADGET_RUN_BTF_CACHE;
  if (v === 'off' || v === '0') return undefined;
  return v || DEFAULT_CACHE;
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

interface Entry {
  dir: string;
  file: string;
  /** the object's content hash, to check it did not change while bpftool read it */
  objectSha: string;
}

function entryFor(objectFile: string, root: string): Entry {
  const dir = path.join(root, kernelKey());
  const objectSha = sha256(objectFile);
  return { dir, file: path.join(dir, `${objectSha}.btf`), objectSha };
}

/** The cached file when it is there and can be trusted; a bad one is removed. */
function readEntry(e: Entry): string | undefined {
  const bytes = readTrusted(e.file, MAX_BYTES);
  if (Buffer.isBuffer(bytes) && isWholeBtf(bytes)) return e.file;
  // someone else's file is left alone; ours, when damaged or too large, is made again
  if (Buffer.isBuffer(bytes) || bytes.problem === 'too-large') discardCoreBtf(e.file);
  return undefined;
}

/** Forget a cache file that did not work (libbpf refused it): the next run makes it again. */
export function discardCoreBtf(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // an unwritable cache is a slower start, not an error
  }
}

let bpftoolPath: string | null | undefined;

/** bpftool's path: on PATH, else where distributions install it; undefined when there is none. */
export function bpftool(): string | undefined {
  if (bpftoolPath === undefined) {
    const dirs = (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, 'bpftool'));
    bpftoolPath = [...dirs, ...BPFTOOL_CANDIDATES].find((p) => {
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return fs.statSync(p).isFile();
      } catch {
        return false;
      }
    }) ?? null;
  }
  return bpftoolPath ?? undefined;
}

/** Objects whose minimized BTF this process is making or failed to make: one try each. */
const started = new Map<string, Promise<void>>();

/**
 * The minimized BTF to relocate `objectFile` against, or undefined (the
 * kernel's full BTF). When it is missing, bpftool starts making it for the
 * next run, off this one's path.
 */
export function coreBtfFor(objectFile: string): string | undefined {
  const root = cacheRoot();
  const btf = kernelBtf();
  if (!root || !btf || btf.kind === 'btfgen') return undefined;
  let e: Entry;
  try {
    e = entryFor(objectFile, root);
  } catch {
    return undefined;
  }
  const hit = readEntry(e);
  if (hit || started.has(e.file)) return hit;
  const tool = bpftool();
  if (tool) started.set(e.file, generate(tool, btf.path, objectFile, e));
  return undefined;
}

/** Resolves once every minimized BTF this process started making is written (or given up): for tests and tools. */
export async function coreBtfSettled(): Promise<void> {
  await Promise.all(started.values());
}

/** bpftool into a temporary file, checked, then renamed into place: readers see a whole file or none. */
function generate(tool: string, kernelBtfFile: string, objectFile: string, e: Entry): Promise<void> {
  let tmp: string;
  try {
    mkdirs(e.dir, 0o755);
    try {
      prune(e.dir);
    } catch {
      // pruning is housekeeping: it must not keep the entry from being made
    }
    tmp = `${e.file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  } catch {
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    const child = spawn(tool, ['gen', 'min_core_btf', kernelBtfFile, tmp, objectFile], { stdio: 'ignore', timeout: BPFTOOL_TIMEOUT_MS });
    const done = (ok: boolean) => {
      try {
        if (ok && isWholeBtf(fs.readFileSync(tmp)) && sha256(objectFile) === e.objectSha) {
          fs.chmodSync(tmp, 0o644);
          fs.renameSync(tmp, e.file);
        }
      } catch {
        // a cache that cannot be written: the full BTF next time too
      } finally {
        fs.rmSync(tmp, { force: true });
        resolve();
      }
    };
    child.on('error', () => done(false));
    child.on('exit', (code) => done(code === 0));
  });
}

/**
 * On a miss (not on the run's path): temporaries of dead processes, the
 * oldest entries past MAX_ENTRIES, and folders of kernels long not booted.
 * An entry is a file ending in `ext`; files named like it with another of
 * `companions` go with it (load-probe.ts keeps a .log beside a .json).
 */
export function prune(dir: string, ext = '.btf', companions: string[] = []): void {
  const now = Date.now();
  const mtime = (p: string) => {
    try {
      return fs.lstatSync(p).mtimeMs;
    } catch {
      return undefined; // gone already
    }
  };
  const entries: [string, number][] = [];
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    const m = mtime(p);
    if (m === undefined) continue;
    if (f.includes('.tmp-')) {
      if (now - m > STALE_TMP_MS) fs.rmSync(p, { force: true });
    } else if (f.endsWith(ext)) {
      entries.push([p, m]);
    }
  }
  entries.sort((a, b) => b[1] - a[1]);
  for (const [p] of entries.slice(MAX_ENTRIES - 1)) {
    for (const e of [ext, ...companions]) fs.rmSync(p.slice(0, -ext.length) + e, { force: true });
  }
  const ours = new Set([ext, ...companions]);
  const root = path.dirname(dir);
  for (const k of fs.readdirSync(root)) {
    const p = path.join(root, k);
    const m = mtime(p);
    if (p === dir || m === undefined || now - m <= STALE_KERNEL_MS || !/^(btf-)?[0-9a-f]+(-[0-9a-f]+)?$/.test(k) || !fs.lstatSync(p).isDirectory()) continue;
    // only what we write, then the folder if that emptied it: GADGET_RUN_BTF_CACHE may name a folder that holds more
    for (const f of fs.readdirSync(p)) if (ours.has(path.extname(f.replace(/\.tmp-.*$/, '')))) fs.rmSync(path.join(p, f), { force: true });
    try {
      fs.rmdirSync(p);
    } catch {
      // not empty: not ours alone
    }
  }
}
