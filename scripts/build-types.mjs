// The library API's type declarations, generated from src/ by tsc into build/types/
// (package.json "types" and exports name build/types/api/index.d.ts): the .d.ts files are
// the API's reference. Skipped when they are newer than every source file.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { isFresh, ROOT } from '../lib/launch.mjs';

const entry = path.join(ROOT, 'build/types/api/index.d.ts');
if (!process.argv.includes('--force') && isFresh(entry) && fs.statSync(entry).mtimeMs >= fs.statSync(path.join(ROOT, 'tsconfig.types.json')).mtimeMs) process.exit(0);
fs.rmSync(path.join(ROOT, 'build/types'), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.types.json')], { stdio: 'inherit' });
