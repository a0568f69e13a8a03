/** The output folder, proven usable before anything runs. */
import fs from 'node:fs';
import path from 'node:path';
import { describeSystemError } from '../system-error.ts';
import { mkdirs } from '../util/mkdirs.ts';
import { OutDirError } from './errors.ts';

/**
 * Make the output folder if missing and prove it writable, or throw OutDirError saying what
 * to do: a bad --out is found before a workload starts or a program loads.
 */
export function prepareOutDir(outDir: string): void {
  const fail = (why: string) => new OutDirError(outDir, why);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && isSymlink(outDir)) throw fail('is a symbolic link to something that does not exist');
    if (code !== 'ENOENT') throw fail(describeSystemError(err));
  }
  if (st && !st.isDirectory()) throw fail('exists and is not a folder');
  try {
    mkdirs(outDir);
    // root passes access(2) checks on a read-only mount: only a real file tells
    const probe = path.join(outDir, `.gadget-run-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
    fs.closeSync(fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
    fs.rmSync(probe);
  } catch (err) {
    throw fail(`cannot write there: ${describeSystemError(err)}`);
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
