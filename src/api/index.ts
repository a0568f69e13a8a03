/**
 * gadget-run as a library, for scripts (zx runbooks) and tools:
 *
 *   import { run, replay, validate, gadgets, stream } from 'gadget-run';
 *
 * - run(recipe, {out, set, signal, onProgress}): a recipe run here; the summary as
 *   summary.json holds it, plus the files' paths
 * - replay(recipe, {from}): evaluate again over an earlier run's raw/ (no root, no kernel)
 * - runCluster(recipe, {cluster: {nodes, namespace, …}}): on every node of a Kubernetes cluster,
 *   merged and judged here (run --cluster)
 * - validate(recipe): the recipe's problems, each with file:line:col, instead of a throw
 * - gadgets() / gadget(id): the catalogue, as `gadget-run gadgets --json` prints it
 * - stream(id, {filter, params, containers, signal}): a gadget's events as an async iterator
 *
 * Errors are classes (./errors.ts); nothing here exits the process or handles its signals
 * unless asked (run's processSignals, which the CLI sets). docs/api.md has examples; the
 * generated .d.ts files are the reference.
 */
export { load, replay, run, validate, RECIPE_OBJECT } from './run.ts';
export { runCluster } from './cluster.ts';
export { stream } from './stream.ts';
export { gadget, gadgets } from './gadgets.ts';
export { CouldNotTraceError, InterruptedError, OptionError, OutDirError, RecipeError, ReplayError, UnknownGadgetError, type Place, type Problem } from './errors.ts';
export type * from './types.ts';
export type { Recipe, StepSpec, LoadedRecipe, Limits } from '../runner/recipe.ts';
export type { CanarySummary, Summary, StepSummary, AssertionSummary, ActionSummary, WorkloadSummary, RunStatus, StepStatus } from '../runner/summary.ts';
export type { ContainerSelection } from '../containers/selection.ts';
