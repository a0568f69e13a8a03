/**
 * A recipe of one step, built in memory from a gadget id and options: the CLI's one-liner
 * (`gadget-run trace/exec --filter …`) and stream() go through the same checks as a recipe
 * file, and their problems name the options they came from, not a place in text nobody wrote.
 */
import type { ContainerSelection } from '../containers/selection.ts';
import { RecipeError, UnknownGadgetError } from '../runner/errors.ts';
import { parseRecipe, type LoadedRecipe } from '../runner/recipe.ts';
import { findGadget, gadgets } from '../steps/index.ts';

/** The step's keys an option may set. */
export interface GadgetStep {
  filter?: string;
  duration?: string;
  buffer?: string;
  /** interval gadgets: how often rows come, which first, how many */
  interval?: string;
  sort?: string;
  max_rows?: number;
  params?: Record<string, unknown>;
  containers?: ContainerSelection;
  /** the liveness canary: checked (default), proven, off; and how long it may take */
  liveness?: 'checked' | 'proven' | 'off';
  canary_budget?: string | number;
}

export interface GadgetStepNames {
  /** what problems say they are in, e.g. `gadget-run:` or `stream()` */
  where: string;
  /** the option a step key (`filter`, `params.interval`, `containers.pod`) came from; undefined: the recipe's path */
  option(key: string): string | undefined;
}

/**
 * Load the one-step recipe of gadget `id`. Without a duration and without a workload, a
 * stream, packet or interval step runs until stopped (the longest duration there is).
 */
export function loadGadgetStep(id: string, options: GadgetStep, names: GadgetStepNames, argv?: string[]): LoadedRecipe {
  const def = findGadget(id);
  if (!def) throw new UnknownGadgetError(id, Object.keys(gadgets));
  const step: Record<string, unknown> = { id: id.split('/').pop()!.replace(/[^A-Za-z0-9_]/g, '_'), gadget: id };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) step[k] = v;
  if (step.duration === undefined && !argv && (def.mode === 'stream' || def.mode === 'packet' || def.mode === 'interval')) step.duration = '24d';
  const recipe = { apiVersion: 'gadget-run/v1', name: id.replace('/', '-'), steps: [step] };
  try {
    // JSON is YAML: the recipe goes through the same checks as a file
    return parseRecipe(JSON.stringify(recipe), names.where, undefined, undefined, { argv });
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    const STEP = 'steps[0].';
    const pathOf = (p: string) => {
      if (p === `${STEP}gadget`) return id;
      return (p.startsWith(STEP) ? names.option(p.slice(STEP.length)) : undefined) ?? p;
    };
    throw new RecipeError(err.problems.map((p) => ({ where: names.where, path: pathOf(p.path), message: p.message })));
  }
}
