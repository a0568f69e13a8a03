// Bundles the CLI into build/gadget-run.mjs so a run starts in ~0.2 s instead
// of transpiling TypeScript on every start (bin/gadget-run falls back to tsx
// when the bundle is missing or older than the sources). An argument names
// another output folder (tests bundle into a copy of the install).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// the JSONata sandbox's worker thread (src/runner/sandbox.ts) loads build/sandbox-worker.mjs
await build({
  entryPoints: { 'gadget-run': `${root}src/runner/main.ts`, 'sandbox-worker': `${root}src/runner/sandbox-worker.ts` },
  outdir: process.argv[2] ?? `${root}build`,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  // bundled CommonJS dependencies call require()
  banner: { js: "import { createRequire as __gadgetRunRequire } from 'node:module'; const require = __gadgetRunRequire(import.meta.url);" },
  logLevel: 'warning',
});
