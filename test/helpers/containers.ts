/** Real containers for the container tests: Debian's podman driving runc over a busybox-static rootfs (crun refuses this machine's hybrid cgroups). */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

export const BUSYBOX = '/bin/busybox';
export const RUNC = '/usr/sbin/runc';

/** Why the container tests cannot run here, or false. */
export function containerSkip(): string | false {
  if (process.getuid?.() !== 0) return 'needs root: runs containers and loads BPF programs';
  for (const [bin, pkg] of [['/usr/bin/podman', 'podman'], [RUNC, 'runc'], [BUSYBOX, 'busybox-static']]) {
    if (!fs.existsSync(bin)) return `needs ${bin} (apt-get install ${pkg}; ./scripts/setup installs it)`;
  }
  return false;
}

/** A busybox rootfs (one static binary and its applet links), removed after the test. */
export function busyboxRootfs(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-rootfs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const d of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp']) fs.mkdirSync(path.join(dir, d));
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'sleep', 'ls', 'echo', 'true', 'touch']) fs.symlinkSync('busybox', path.join(dir, 'bin', applet));
  return dir;
}

/** `podman run` arguments that work on this machine (runc; rlimits no higher than ours). */
export function podmanRunArgs(name: string, rootfs: string, command: string[], detach = false): string[] {
  return ['--runtime', RUNC, 'run', '--rm', ...(detach ? ['-d'] : []), '--name', name, '--network', 'none',
    '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--rootfs', rootfs, ...command];
}

export interface Started {
  name: string;
  id: string;
}

/** A detached container, stopped and removed after the test. */
export function startContainer(t: TestContext, name: string, rootfs: string, command: string[]): Started {
  const id = execFileSync('podman', podmanRunArgs(name, rootfs, command, true), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  t.after(() => removeContainer(name));
  return { name, id };
}

/** Run a container to its end (without blocking the event loop, where the container tracker runs); its stdout. */
export async function runContainer(name: string, rootfs: string, command: string[]): Promise<string> {
  const child = spawn('podman', podmanRunArgs(name, rootfs, command), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`podman run ${name} exited with ${code}: ${err.trim()}`);
  return out;
}

export function removeContainer(name: string): void {
  try {
    execFileSync('podman', ['rm', '-f', '-t', '0', name], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
}

/** A unique container name for this test process. */
export function containerName(label: string): string {
  return `gr-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
