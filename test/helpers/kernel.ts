/**
 * What kernel tests share: the root/hook skip reasons, the compiled objects,
 * BPF fds held by this process (for leak checks).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeReason, unsupportedMessage } from '../../src/ebpf/reasons.ts';
import { checkSupport, probeSupport, type GadgetDefinition } from '../../src/steps/index.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const OBJECT_DIR = path.join(REPO, 'build', 'bpf');

/** Every hook our gadgets use (tracepoints, iter/task, ring buffer) is in Linux 5.8+. */
const HOOKS_SINCE: [number, number] = [5, 8];

export const NOT_ROOT = 'needs root: loads BPF programs (run the tests as root or with sudo)';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function kernelAtLeast([major, minor]: [number, number]): boolean {
  const [maj, min] = os.release().split(/[.-]/).map(Number);
  return maj > major || (maj === major && min >= minor);
}

/**
 * The `skip` option of a kernel test: a reason when not root, or when the
 * gadget's hook is missing on a kernel too old to have it. On a kernel that
 * should have the hook the test runs, and fails on the gadget's
 * `unsupported` error.
 */
export function kernelSkip(def?: GadgetDefinition): string | false {
  if (!isRoot()) return NOT_ROOT;
  if (!def) return false;
  const { why } = checkSupport(def);
  if (!why || kernelAtLeast(HOOKS_SINCE)) return false;
  return `${unsupportedMessage(def.id, why)} (Linux ${os.release()} predates ${HOOKS_SINCE.join('.')})`;
}

/**
 * Each hook variant of a gadget as a gadget of its own, for tests that run them side by side:
 * `here`, those this kernel runs (hooks present, programs load), in order of preference, and
 * `notHere`, why each other one does not. Each definition is pinned to its variant
 * (`pinnedVariant`, as GADGET_RUN_VARIANT pins one): the others' programs are left out as in a real run.
 */
export async function eachVariant(def: GadgetDefinition): Promise<{ here: [string, GadgetDefinition][]; notHere: string[] }> {
  const here: [string, GadgetDefinition][] = [];
  const notHere: string[] = [];
  for (const v of def.variants ?? []) {
    const only: GadgetDefinition = { ...def, pinnedVariant: v.name };
    const { why } = await probeSupport(only, objectDir());
    if (why) notHere.push(`${v.name}: ${describeReason(why)}`);
    else here.push([v.name, only]);
  }
  return { here, notHere };
}

let built = false;

/** build/bpf/*.bpf.o, built with `make -C bpf` once per test process (make skips what is up to date). */
export function objectDir(): string {
  if (!built) {
    try {
      execFileSync('make', ['-s', '-C', path.join(REPO, 'bpf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`building the BPF objects (make -C bpf) failed: ${e.stderr?.toString().trim() || e.message}`, { cause: err });
    }
    built = true;
  }
  return OBJECT_DIR;
}

export function objectPath(def: GadgetDefinition): string {
  return path.join(objectDir(), def.object);
}

export interface BpfFd {
  fd: number;
  /** bpf_link, bpf-prog, bpf-map, or [perf_event] (what libbpf attaches tracepoints through) */
  kind: string;
  /** fdinfo keys: link_id, prog_id, map_id, ... */
  info: Record<string, string>;
}

/** The BPF objects (links, programs, maps) and perf events a process (default: this one) holds open, from /proc/PID/fd and fdinfo. */
export function bpfFds(pid: number | 'self' = 'self'): BpfFd[] {
  const out: BpfFd[] = [];
  for (const name of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    let fdinfo: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${name}`);
      fdinfo = fs.readFileSync(`/proc/${pid}/fdinfo/${name}`, 'utf8');
    } catch {
      continue; // the fd of the readdir itself, gone by now
    }
    const m = /^anon_inode:(bpf[-_][a-z]+|\[perf_event\])$/.exec(target);
    if (!m) continue;
    const info: Record<string, string> = {};
    for (const line of fdinfo.split('\n')) {
      const [k, ...v] = line.split(':');
      if (v.length) info[k.trim()] = v.join(':').trim();
    }
    out.push({ fd: Number(name), kind: m[1], info });
  }
  return out;
}

/** Compile test/fixtures/NAME.c into a temp dir removed after the test; returns the binary's path. */
export function buildCFixture(t: import('node:test').TestContext, name: string, flags: string[] = []): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gadget-fixture-${name}-`));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, name);
  execFileSync('clang', ['-O2', '-Wall', '-Werror', ...flags, path.join(REPO, 'test/fixtures', `${name}.c`), '-o', out], { stdio: 'pipe' });
  return out;
}

/**
 * `-target bpf` has no target triple of its own, so clang does not look in Debian's multiarch
 * include folder (/usr/include/x86_64-linux-gnu, where asm/types.h lives) for a BPF program
 * that includes <linux/*.h>: add the host's, as `gcc -dumpmachine` names it.
 */
export function multiarchIncludes(): string[] {
  let triple: string;
  try {
    triple = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
  } catch {
    triple = `${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  }
  const dir = `/usr/include/${triple}`;
  return fs.existsSync(dir) ? ['-I', dir] : [];
}
