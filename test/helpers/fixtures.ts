/** C trigger programs from test/fixtures, compiled per test. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO } from './kernel.ts';
import { tempDir } from './session.ts';

/** Compile test/fixtures/NAME.c into the test's temp dir (readable and runnable by any uid); the binary's path. */
export function buildFixture(t: TestContext, name: string, flags: string[] = []): string {
  const dir = tempDir(t);
  fs.chmodSync(dir, 0o755); // mkdtemp makes it 0700
  const out = path.join(dir, name);
  execFileSync('clang', ['-O2', ...flags, path.join(REPO, 'test/fixtures', `${name}.c`), '-o', out], { stdio: 'pipe' });
  return out;
}
