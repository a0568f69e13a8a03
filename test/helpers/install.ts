/**
 * A copy of the CLI and the library that any user can run: the bundles, their launchers and what
 * they read at run time (package.json, schemas/, the packages left out of the
 * bundle: scripts/unbundled.mjs),
 * in a fresh world-readable folder. Tests that run the CLI as another user use
 * it, so they work wherever the checkout lives (under /root, in a 0700 folder).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
// @ts-expect-error -- a JavaScript module without types
import { UNBUNDLED_MODULES as unbundled } from '../../scripts/unbundled.mjs';
import { REPO } from './kernel.ts';

const UNBUNDLED_MODULES = unbundled as string[];

/** A temp folder every user can reach: os.tmpdir() unless one of its ancestors is closed to others, then /tmp. */
export function sharedTempDir(t: TestContext, prefix: string): string {
  const reachable = (dir: string): boolean => {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      if ((fs.statSync(d).mode & 0o001) === 0) return false;
      if (path.dirname(d) === d) return true;
    }
  };
  const base = reachable(os.tmpdir()) ? os.tmpdir() : '/tmp';
  const dir = fs.mkdtempSync(path.join(base, prefix));
  fs.chmodSync(dir, 0o755);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Bundle this checkout into a world-readable copy; returns the copy's bin/gadget-run. */
export function readableInstall(t: TestContext): string {
  const dir = sharedTempDir(t, 'gadget-run-install-');
  // src/ only for the launcher's freshness check: the bundle, built after the copy, is newer
  for (const p of ['bin', 'lib', 'index.mjs', 'src', 'schemas', 'package.json']) fs.cpSync(path.join(REPO, p), path.join(dir, p), { recursive: true });
  // what stays outside the bundle: koffi (a native addon) and what is required at first use
  for (const p of UNBUNDLED_MODULES) fs.cpSync(path.join(REPO, 'node_modules', p), path.join(dir, 'node_modules', p), { recursive: true });
  execFileSync(process.execPath, [path.join(REPO, 'scripts/build-cli.mjs'), path.join(dir, 'build')], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  return path.join(dir, 'bin/gadget-run');
}
