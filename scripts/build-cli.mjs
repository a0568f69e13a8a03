// Bundles the CLI into build/gadget-run.mjs and the library API into
// build/api.mjs (what `import … from 'gadget-run'` loads: index.mjs), so both
// start fast instead of transpiling TypeScript on every start (lib/launch.mjs
// falls back to tsx when a bundle is missing or older than the sources). They
// share their chunks. An argument names another output folder (tests bundle
// into a copy of the install). The API's types: scripts/build-types.mjs.
//
// Start-up time is the point (bench/startup.ts), so:
// - code splitting: each command's import() becomes a chunk (build/chunk-*.mjs)
//   loaded only when the command runs; `--version` loads a few KB, not the
//   recipe parser, JSONata, ajv, the JUnit writer or libbpf's bindings;
// - src/runner/validators.ts is replaced by ajv's standalone code, generated
//   here from schemas/recipe.schema.json and every gadget's params schema:
//   no schema compilation at start-up, and no ajv compiler in the bundle;
// - JSONata and RE2JS stay in node_modules, required at their first use
//   (src/deferred.ts): a recipe without expressions or regexes never compiles them.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import AjvModule from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'build');
const Ajv = AjvModule.default ?? AjvModule;
const standaloneCode = standaloneModule.default ?? standaloneModule;

/** The generated module behind src/runner/validators.ts: same exports, validators precompiled. */
async function validatorsModule() {
  const { AJV_OPTIONS, recipeSchemaWithModes } = await tsImport('../src/runner/validators.ts', import.meta.url);
  const { gadgets } = await tsImport('../src/steps/index.ts', import.meta.url);
  // the recipe schema with every mode's step keys, as the TypeScript path compiles it
  const recipeSchema = recipeSchemaWithModes();
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true, esm: true } });
  ajv.addSchema(recipeSchema, 'recipe');
  const withParams = Object.values(gadgets).filter((d) => d.params);
  withParams.forEach((d, i) => ajv.addSchema(d.params, `params${i}`));
  const exports = { recipe: 'recipe', ...Object.fromEntries(withParams.map((_, i) => [`params${i}`, `params${i}`])) };
  const table = withParams.map((d, i) => `${JSON.stringify(d.id)}: params${i}`).join(', ');
  return `${standaloneCode(ajv, exports)}
export const AJV_OPTIONS = ${JSON.stringify(AJV_OPTIONS)};
const byId = { ${table} };
export function recipeValidator() { return recipe; }
export function paramValidator(id) {
  if (!Object.hasOwn(byId, id)) throw new Error('no precompiled params validator for ' + id + ': rebuild the bundle (node scripts/build-cli.mjs)');
  return byId[id];
}
`;
}

const validators = await validatorsModule();
const precompiled = {
  name: 'precompiled-validators',
  setup(b) {
    b.onLoad({ filter: /src[\\/]runner[\\/]validators\.ts$/ }, () => ({ contents: validators, loader: 'js', resolveDir: path.join(root, 'src/runner') }));
  },
};

// chunks of an earlier build would ship in the package otherwise
for (const f of fs.existsSync(out) ? fs.readdirSync(out) : []) if (/^chunk-.*\.mjs$/.test(f)) fs.rmSync(path.join(out, f));

// the JSONata sandbox's worker thread (src/runner/sandbox.ts) loads build/sandbox-worker.mjs
await build({
  entryPoints: { 'gadget-run': `${root}src/cli/main.ts`, api: `${root}src/api/index.ts`, 'sandbox-worker': `${root}src/runner/sandbox-worker.ts` },
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  // next to the entry points, so that import.meta.url-relative paths (sandbox.ts) hold in every chunk
  chunkNames: 'chunk-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  plugins: [precompiled],
  // bundled CommonJS dependencies call require()
  banner: { js: "import { createRequire as __gadgetRunRequire } from 'node:module'; const require = __gadgetRunRequire(import.meta.url);" },
  logLevel: 'warning',
});
