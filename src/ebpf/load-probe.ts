/**
 * Does this object load on this kernel? A hook that exists is not enough:
 * Linux 6.1 has every tracepoint trace/dns attaches to and still refuses its
 * object (a kfunc it lacks), and the verifier of one kernel rejects what
 * another's accepts. So `gadgets` and a run's preparation load the object —
 * open, CO-RE relocate against the full kernel BTF, create the maps, verify
 * every program — without attaching anything, and close it again.
 *
 * That costs 30–200 ms an object, so the answer is kept in
 *
 *   $GADGET_RUN_PROBE_CACHE (default /var/cache/gadget-run/probes)/<kernel build id>/<sha-256 of the object>.json
 *
 * with libbpf's full log beside it (.log) when the load failed, and the
 * objects' hashes remembered by inode and ctime in digests.json. The kernel's
 * GNU build id (/sys/kernel/notes; core-btf.ts kernelKey) names one kernel
 * image exactly, where the release string does not (a rebuilt package keeps
 * it) and is there without reading 5 MB of BTF; the BTF's hash stands in
 * when the kernel has no notes. The object's content hash, not its path or
 * mtime, says which build of the object was probed. A record also names the
 * libbpf version and the programs left out; and a refusal is reused only
 * while the same module BTFs are loaded (a module may bring the missing
 * kfunc). Refusals that depend on the moment rather than the kernel
 * (EPERM, memory limits) are never kept.
 *
 * Files are private (0600 in a 0700 folder), written whole under a temp name
 * then renamed, read only when root or we own them and no one else may write
 * them, at most MAX_RECORD_BYTES; past core-btf.ts MAX_ENTRIES records a
 * kernel's oldest go. GADGET_RUN_PROBE_CACHE=off probes every time.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { prune, sha256 } from './core-btf.ts';
import { mkdirs } from '../util/mkdirs.ts';
import { readTrusted } from '../util/trusted.ts';
import { Btf } from './btf.ts';
import { readElfSections } from './elf.ts';
import { KernelError, errnoName } from './errors.ts';
import { fullCoreBtf, hasOwnBtf, kernelBtf, kernelKey } from './kernel-btf.ts';
import { native } from './libbpf.ts';
import { BpfObject, type ProgramInfo } from './object.ts';
import type { Reason } from './reasons.ts';

const DEFAULT_CACHE = '/var/cache/gadget-run/probes';
/** bumped when what a probe does changes, so older records are probed again */
const FORMAT = 2;
const MAX_RECORD_BYTES = 64 * 1024;
const MAX_LOG_BYTES = 1024 * 1024;
/** refusals that say more about this moment (privileges, memory) than about the kernel */
const TRANSIENT = new Set(['EPERM', 'ENOMEM', 'E2BIG', 'EAGAIN', 'EBUSY', 'EINTR']);

/** The probe cache folder, or undefined when GADGET_RUN_PROBE_CACHE=off. */
export function probeCacheRoot(): string | undefined {
  const v = process.env.GADGET_RUN_PROBE_CACHE;
  if (v === 'off' || v === '0') return undefined;
  return v || DEFAULT_CACHE;
}

interface LoadRecord {
  format: number;
  libbpf: string;
  object: string;
  /** the optional tracepoints missing here, whose programs were left out */
  missing: string[];
  /** the programs of the gadget's other hook variants, left out */
  leftOut: string[];
  /** sorted names under /sys/kernel/btf when a refusal was recorded */
  modules?: string[];
  reason?: Extract<Reason, { kind: 'load' }>;
}

/** How the last probeObjectLoad answered: for tests and `GADGET_RUN_DEBUG`. */
export type ProbeSource = 'cache' | 'loaded';

export interface ProbeResult {
  why?: Extract<Reason, { kind: 'load' | 'kernel-btf' | 'btfgen-object' }>;
  source: ProbeSource;
}

/** Sections of programs the kernel checks against its own BTF (attach_btf_id): libbpf needs /sys/kernel/btf/vmlinux for them. */
const OWN_BTF_SECTIONS = /^(tp_btf|iter|iter\.s|fentry|fexit|fmod_ret|fentry\.s|fexit\.s|fmod_ret\.s|lsm|lsm\.s|struct_ops|freplace)(\/|$)/;

/** one probe load at a time in a process: libbpf's log is process-wide, and each refusal must keep its own words */
let queue: Promise<unknown> = Promise.resolve();
/** per process: an object is loaded at most once */
const answered = new Map<string, Promise<ProbeResult>>();

/**
 * The programs of an object that hook `tracepoints` (optional ones missing
 * here): a run leaves them out, and so does the probe.
 */
export function programsOn(programs: ProgramInfo[], tracepoints: readonly string[]): ProgramInfo[] {
  return programs.filter((p) => tracepoints.some((tp) => p.section === `tracepoint/${tp}`));
}

/**
 * Load `file` on this kernel (nothing attached) and say why not, if it does
 * not load. `missing`: the optional tracepoints this kernel lacks, whose
 * programs a run leaves out; `leaveOut`: programs of the gadget's other hook
 * variants (a record per object and variant).
 */
export function probeObjectLoad(file: string, missing: readonly string[] = [], leaveOut: readonly string[] = []): Promise<ProbeResult> {
  const objectSha = objectDigest(file);
  const sorted = [...missing].sort();
  const left = [...leaveOut].sort();
  const key = `${objectSha} ${file} ${sorted.join(',')} ${left.join(',')}`;
  let p = answered.get(key);
  if (!p) {
    p = queue.then(() => probe(file, objectSha, sorted, left));
    queue = p.catch(() => undefined);
    answered.set(key, p);
    // an error (not a refusal) is not an answer: the next call tries again
    p.catch(() => answered.delete(key));
  }
  return p;
}

/** Forget this process's answers and digests (tests: to see the cache at work). */
export function forgetProbes(): void {
  answered.clear();
  digests = undefined;
}

async function probe(file: string, objectSha: string, missing: string[], leftOut: string[]): Promise<ProbeResult> {
  const btf = kernelBtf();
  // a minimized BTF made for other builds of the object may lack its types: bpf_core_field_exists() would say no, wrongly
  if (btf?.kind === 'btfgen' && !btf.objects.includes(objectSha)) return { why: { kind: 'btfgen-object', object: path.basename(file), dir: btf.dir }, source: 'loaded' };
  if (!hasOwnBtf()) {
    const why = needsOwnBtf(file, missing, leftOut);
    if (why) return { why, source: 'loaded' };
  }
  const root = probeCacheRoot();
  const dir = root && path.join(root, kernelKey());
  const libbpf = libbpfVersion();
  // one record per object and variant: the variant's left-out programs name it
  const name = leftOut.length ? `${objectSha}-${createHash('sha256').update(leftOut.join(',')).digest('hex').slice(0, 16)}` : objectSha;
  const cached = dir && readRecord(path.join(dir, `${name}.json`));
  if (cached && cached.format === FORMAT && cached.libbpf === libbpf && sameList(cached.missing, missing) && sameList(cached.leftOut, leftOut) && (!cached.reason || sameList(cached.modules ?? [], moduleBtfs()))) {
    return { ...(cached.reason ? { why: cached.reason } : {}), source: 'cache' };
  }
  const obj = openForProbe(file, missing, leftOut);
  let why: Extract<Reason, { kind: 'load' }> | undefined;
  let logFile: string | undefined;
  try {
    try {
      await obj.load();
    } catch (err) {
      if (!(err instanceof KernelError) || !err.load) throw err;
      const f = err.load;
      logFile = f.logFile;
      why = { kind: 'load', object: path.basename(file), errno: err.errno, ...(f.program ? { program: f.program } : {}), verifier: f.verifier, detail: f.detail, ...(logFile ? { log: logFile } : {}) };
    }
  } finally {
    obj.close();
  }
  const keep = dir && (!why || why.verifier || !TRANSIENT.has(errnoName(why.errno)));
  if (keep) {
    const logPath = why && logFile ? path.join(dir, `${name}.log`) : undefined;
    const record: LoadRecord = { format: FORMAT, libbpf, object: path.basename(file), missing, leftOut, ...(why ? { modules: moduleBtfs() } : {}) };
    try {
      mkdirs(dir, 0o700);
      try {
        prune(dir, '.json', ['.log']);
      } catch {
        // housekeeping must not keep the record from being written
      }
      if (logPath) {
        writePrivate(logPath, readTail(logFile!));
        fs.rmSync(logFile!, { force: true });
        why!.log = logPath;
      }
      writePrivate(path.join(dir, `${name}.json`), JSON.stringify({ ...record, ...(why ? { reason: why } : {}) }));
    } catch {
      // a cache that cannot be written: the next probe loads the object again (the log stays in the temp folder)
    }
  }
  return { ...(why ? { why } : {}), source: 'loaded' };
}

/**
 * The object opened as a run opens it (relocating against the BTF in use),
 * with the programs of missing optional tracepoints and of other variants
 * (`leftOut`) left out.
 */
function openForProbe(file: string, missing: readonly string[], leftOut: readonly string[]): BpfObject {
  const obj = BpfObject.open(file, { coreBtf: fullCoreBtf() });
  try {
    for (const p of programsOn(obj.programs(), missing)) obj.disableProgram(p.name);
    for (const p of leftOut) obj.disableProgram(p);
  } catch (err) {
    obj.close();
    throw err;
  }
  return obj;
}

/** On a kernel without its own BTF: what of the object needs it (programs a run would load, kfuncs), if anything. */
function needsOwnBtf(file: string, missing: readonly string[], leftOut: readonly string[]): Extract<Reason, { kind: 'kernel-btf' }> | undefined {
  const obj = openForProbe(file, missing, leftOut);
  try {
    const hooks = obj.programs().filter((p) => obj.autoloads(p.name) && OWN_BTF_SECTIONS.test(p.section)).map((p) => p.section);
    // from the file: libbpf rewrites the externs in the BTF it opened
    const raw = readElfSections(file, ['.BTF']).sections.get('.BTF');
    const ksyms = raw ? new Btf(raw).typedKsyms() : [];
    return hooks.length || ksyms.length ? { kind: 'kernel-btf', object: path.basename(file), hooks: [...new Set(hooks)], ksyms } : undefined;
  } finally {
    obj.close();
  }
}

/** realpath → the object's identity (device, inode, size, mtime, ctime in ns) and its sha-256 */
type DigestIndex = Record<string, { stat: string; sha: string }>;
const DIGEST_INDEX = 'digests.json';
const MAX_DIGESTS = 512;
let digests: DigestIndex | undefined;

/**
 * The object's sha-256, remembered across runs by its identity: hashing the
 * 23 objects (19 MB with their debug info) was most of a warm `gadgets`.
 * The ctime changes with any write or rename onto the path and no one can
 * set it back, so an unchanged identity is unchanged content; the file is
 * stat'ed through the fd it is read from, before and after, so a file
 * rewritten while it was read is hashed again next time.
 */
export function objectDigest(file: string): string {
  const root = probeCacheRoot();
  if (!root) return sha256(file);
  const real = fs.realpathSync(file);
  digests ??= readDigests(path.join(root, DIGEST_INDEX));
  const fd = fs.openSync(real, fs.constants.O_RDONLY);
  try {
    const before = identity(fs.fstatSync(fd, { bigint: true }));
    const known = digests[real];
    if (known?.stat === before) return known.sha;
    const sha = createHash('sha256').update(fs.readFileSync(fd)).digest('hex');
    if (identity(fs.fstatSync(fd, { bigint: true })) === before) {
      delete digests[real];
      digests[real] = { stat: before, sha };
      const keys = Object.keys(digests);
      for (const k of keys.slice(0, Math.max(0, keys.length - MAX_DIGESTS))) delete digests[k];
      try {
        mkdirs(root, 0o700);
        writePrivate(path.join(root, DIGEST_INDEX), JSON.stringify(digests));
      } catch {
        // unwritable: hashed again next time
      }
    }
    return sha;
  } finally {
    fs.closeSync(fd);
  }
}

function identity(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function readDigests(file: string): DigestIndex {
  const text = readPrivate(file, MAX_RECORD_BYTES * 4);
  if (text === undefined) return Object.create(null);
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return Object.create(null);
    // Object.create(null): a path named __proto__ is a path, not a prototype
    const out: DigestIndex = Object.create(null);
    for (const [k, e] of Object.entries(v as Record<string, { stat?: unknown; sha?: unknown }>)) {
      if (typeof e?.stat === 'string' && typeof e.sha === 'string' && /^[0-9a-f]{64}$/.test(e.sha)) out[k] = { stat: e.stat, sha: e.sha };
    }
    return out;
  } catch {
    return Object.create(null);
  }
}

function libbpfVersion(): string {
  const n = native();
  return `${n.libbpf_major_version()}.${n.libbpf_minor_version()}`;
}

/** vmlinux and the loaded modules that carry BTF: where libbpf looks for kfuncs */
function moduleBtfs(): string[] {
  try {
    return fs.readdirSync('/sys/kernel/btf').sort();
  } catch {
    return [];
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A record, when it is a file of ours no one else may have written, small and whole; else undefined. */
function readRecord(file: string): LoadRecord | undefined {
  const text = readPrivate(file, MAX_RECORD_BYTES);
  try {
    const r = text === undefined ? undefined : (JSON.parse(text) as LoadRecord);
    if (typeof r !== 'object' || r === null || !Array.isArray(r.missing) || !Array.isArray(r.leftOut)) return undefined;
    return r.reason === undefined || isLoadReason(r.reason) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** A refusal as probe() writes it: anything else in a record is not ours, and is not shown to anyone. */
function isLoadReason(r: unknown): r is LoadRecord['reason'] {
  const x = r as Record<string, unknown>;
  return typeof x === 'object' && x !== null && x.kind === 'load' && typeof x.object === 'string' && typeof x.errno === 'number' &&
    typeof x.verifier === 'boolean' && Array.isArray(x.detail) && x.detail.every((l) => typeof l === 'string') &&
    (x.program === undefined || typeof x.program === 'string') && (x.log === undefined || typeof x.log === 'string');
}

/** A file's text when it and its folder are ours or root's, no one else may write them, and it is at most `max` bytes. */
function readPrivate(file: string, max: number): string | undefined {
  const bytes = readTrusted(file, max);
  return Buffer.isBuffer(bytes) ? bytes.toString('utf8') : undefined;
}

/** The last MAX_LOG_BYTES of a log: a verifier log can run to megabytes, and its end says why. */
function readTail(file: string): string {
  const buf = fs.readFileSync(file);
  return buf.subarray(Math.max(0, buf.length - MAX_LOG_BYTES)).toString('utf8');
}

/** Whole or not at all: a temp file created O_EXCL, 0600, then renamed over the old one. */
function writePrivate(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
