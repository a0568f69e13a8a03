/** C trigger programs under test/fixtures/, compiled per test. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { REPO } from './kernel.ts';
import { tempDir } from './session.ts';

/** Compile test/fixtures/<name>.c into a temp dir (removed after the test); returns the binary, named `name` (its comm). */
export function compileFixture(t: TestContext, name: string, flags: string[] = []): string {
  const out = path.join(tempDir(t), name);
  execFileSync('clang', ['-O2', ...flags, path.join(REPO, 'test/fixtures', `${name}.c`), '-o', out], { stdio: 'pipe' });
  return out;
}
