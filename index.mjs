// The package's entry: `import { run, replay, validate, gadgets, stream } from 'gadget-run'`.
// The bundle build/api.mjs when it is fresh, else the TypeScript (src/api/index.ts) through tsx
// (lib/launch.mjs). Types: build/types/api/index.d.ts, generated from src (docs/api.md).
import { importFresh } from './lib/launch.mjs';

const api = await importFresh('api.mjs', 'src/api/index.ts');

export const {
  run, replay, runCluster, validate, load, gadgets, gadget, stream, RECIPE_OBJECT,
  RecipeError, OptionError, OutDirError, ReplayError, UnknownGadgetError, CouldNotTraceError, InterruptedError,
} = api;
