/**
 * The library's `btf` option (the CLI's --btf): in a mount namespace where /sys/kernel/btf is
 * an empty tmpfs, a gadget is unsupported without it, supported and traced exactly with it,
 * and a second, different file in the same process is an OptionError (one kernel, one BTF).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SYSFS_BTF } from '../../src/ebpf/kernel-btf.ts';
import { kernelSkip, objectDir, REPO } from '../helpers/kernel.ts';
import { tempDir } from '../runner/cli-helpers.ts';

const skip = kernelSkip() || (!fs.existsSync(SYSFS_BTF) && `no ${SYSFS_BTF} to copy`);

test('run(), gadget() and stream() take btf: FILE on a kernel whose /sys/kernel/btf is hidden', { skip }, () => {
  const dir = tempDir('gadget-run-api-btf-');
  fs.chmodSync(dir, 0o755);
  const copy = path.join(dir, 'vmlinux.btf');
  const other = path.join(dir, 'other.btf');
  fs.copyFileSync(SYSFS_BTF, copy);
  fs.copyFileSync(SYSFS_BTF, other);
  const script = path.join(REPO, 'test/fixtures/api-btf.mts');
  const env: NodeJS.ProcessEnv = { ...process.env, GADGET_RUN_PROBE_CACHE: path.join(dir, 'probes'), GADGET_RUN_BTF_CACHE: path.join(dir, 'btf-cache') };
  delete env.GADGET_RUN_BTF;
  delete env.GADGET_RUN_BTF_DIR;
  const stdout = execFileSync(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /sys/kernel/btf && exec "$@"', 'sh', process.execPath, '--import', 'tsx', script, copy, other, path.join(dir, 'out'), objectDir()],
    { cwd: REPO, env, encoding: 'utf8', timeout: 300_000 },
  );
  const report = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.deepEqual(report.before, { supported: false, kind: 'no-btf' }, 'without btf: unsupported, for want of BTF');
  assert.deepEqual(report.after, { supported: true });
  assert.equal(report.run.status, 'passed');
  assert.deepEqual(report.run.echo, [['/bin/echo', report.run.token]], 'the echo, exactly once');
  assert.equal(report.other, `OptionError: btf: ${other}: this process already uses ${copy} as the kernel's BTF (one kernel, one BTF per process)`);
});
