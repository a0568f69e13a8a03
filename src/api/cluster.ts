/**
 * runCluster(): a recipe on every node of a Kubernetes cluster (or the nodes named), as
 * `gadget-run run --cluster` does it — the CLI's command is this call plus the terminal.
 * The nodes' agents capture; their raw/ is merged here and judged by the judge a local run
 * uses (src/k8s/cluster-run.ts), then exported and acted on as run() does (after-verdict.ts).
 * The Kubernetes client is loaded only when a cluster run starts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { actionUser, recipeDirOf } from '../runner/actions.ts';
import { afterVerdict } from '../runner/after-verdict.ts';
import { RAW_DIR } from '../runner/capture.ts';
import { OptionError } from '../runner/errors.ts';
import { prepareOutDir } from '../runner/out-dir.ts';
import { compileRedactor } from '../runner/redact.ts';
import { invokingUser } from '../runner/workload.ts';
import { parseSize } from '../steps/duration.ts';
import { checkExportEnv, durationOption, load, paths, RECIPE_OBJECT, settle } from './run.ts';
import type { ClusterRunOptions, ClusterRunResult, RecipeInput } from './types.ts';

/** the most port-forwards one run --cluster opens at once through the API server */
export const MAX_FETCH_CONCURRENCY = 64;

/**
 * Run a recipe on the cluster's nodes (every node with an agent by default): resolves with
 * the merged verdict (summary.json's, with `cluster`: each node's answer) and the files'
 * paths; rejects as run() does (RecipeError, OptionError before anything runs;
 * InterruptedError when `signal` cancelled the run on every node — what they captured is
 * judged and written first), and with an Error saying what the API server answered when the
 * run cannot be created or watched (gadget-run not deployed, no kubeconfig).
 */
export async function runCluster(recipe: RecipeInput, opts: ClusterRunOptions = {}): Promise<ClusterRunResult> {
  const loaded = load(recipe, opts.limits ? { limits: opts.limits } : {});
  const text = recipeText(recipe, loaded.file);
  if (opts.export !== false) checkExportEnv(loaded);
  if (opts.maxDuration !== undefined) durationOption('maxDuration', opts.maxDuration);
  if (opts.inlineLimit !== undefined) {
    try {
      parseSize(opts.inlineLimit);
    } catch (err) {
      throw new OptionError('inlineLimit', (err as Error).message);
    }
  }
  if (opts.fetchConcurrency !== undefined && !(Number.isInteger(opts.fetchConcurrency) && opts.fetchConcurrency >= 1 && opts.fetchConcurrency <= MAX_FETCH_CONCURRENCY)) {
    throw new OptionError('fetchConcurrency', `an integer from 1 to ${MAX_FETCH_CONCURRENCY}, not ${opts.fetchConcurrency}`);
  }
  const out = opts.out ?? path.join('out', loaded.recipe.name);
  prepareOutDir(out);
  const log = opts.log ?? (() => {});
  const { renderNodes, runOnCluster } = await import('../k8s/cluster-run.ts');
  const { nodes, ...selector } = opts.cluster ?? {};
  const judged = await runOnCluster(loaded, {
    outDir: out,
    text,
    ...(nodes?.length ? { nodes } : {}),
    ...(Object.keys(selector).length ? { selector } : {}),
    ...(opts.maxDuration !== undefined ? { maxDuration: opts.maxDuration } : {}),
    ...(opts.inlineLimit !== undefined ? { inlineLimit: opts.inlineLimit } : {}),
    ...(opts.fetchConcurrency !== undefined ? { fetchConcurrency: opts.fetchConcurrency } : {}),
    ...(opts.runNamespace !== undefined ? { namespace: opts.runNamespace } : {}),
    ...(opts.updateBaseline ? { updateBaseline: true } : {}),
    ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  // the merge's export (one resource per node) and the actions, here where the verdict is, once
  const redactor = compileRedactor(loaded.recipe.redact);
  const summary = await afterVerdict(loaded.recipe, judged, {
    outDir: out,
    recipeDir: recipeDirOf(loaded.file),
    exportEvents: opts.export ?? true,
    ...(opts.actions === false ? {} : { user: actionUser(undefined, invokingUser(), loaded.file) }),
    log,
    redact: (v) => redactor.value(v),
    markdown: (s) => renderNodes(s as typeof judged, 'md'),
  });
  return settle(summary, paths(loaded, summary, out, path.join(out, RAW_DIR), opts.junit)) as ClusterRunResult;
}

/** What the nodes are sent: the file's text, or a recipe object as JSON (JSON is YAML); each agent checks it again. */
function recipeText(recipe: RecipeInput, file: string): string {
  if (typeof recipe === 'string') return fs.readFileSync(recipe, 'utf8');
  if (file !== RECIPE_OBJECT && 'positions' in recipe) return fs.readFileSync(file, 'utf8');
  if ('positions' in recipe) throw new OptionError('recipe', 'a recipe loaded from an object cannot be sent to the nodes: give runCluster() the object itself, or a file');
  return JSON.stringify(recipe);
}
