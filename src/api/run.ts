/**
 * run(), replay(), validate() and load(): the runner (src/runner) behind a typed surface that
 * throws typed errors and never exits the process. The CLI's run, replay and validate
 * commands are these calls plus the terminal.
 */
import path from 'node:path';
import { artifactPath } from '../runner/artifacts.ts';
import { RAW_DIR } from '../runner/capture.ts';
import { OptionError, RecipeError, type Problem } from '../runner/errors.ts';
import { junitPath } from '../runner/judge.ts';
import { prepareOutDir } from '../runner/out-dir.ts';
import { DEFAULT_LIMITS, loadRecipeFile, parseRecipe, type LoadedRecipe, type Recipe } from '../runner/recipe.ts';
import { replayRecipe } from '../runner/replay.ts';
import { loadSeccompProfile, type SeccompPlan } from '../runner/seccomp.ts';
import { runRecipe, type ObservedStep, type RunObserver } from '../runner/run.ts';
import type { Summary } from '../runner/summary.ts';
import { actionUser } from '../runner/actions.ts';
import { missingHeaderEnv } from '../runner/otlp.ts';
import { chooseUser, invokingUser, WorkloadUserError } from '../runner/workload.ts';
import { gadgets as registry } from '../steps/index.ts';
import { parseDuration } from '../steps/duration.ts';
import { defaultObjectDir } from '../util/package-root.ts';
import { useBtfOption } from './btf.ts';
import { CouldNotTraceError, InterruptedError } from './errors.ts';
import type { LoadOptions, RecipeInput, ReplayOptions, RunOptions, RunPaths, RunProgress, RunResult, ValidateResult } from './types.ts';

/** What a recipe given as an object is called in its problems (they have a JSON path, no line). */
export const RECIPE_OBJECT = '<recipe object>';

const DEFAULT_PROGRESS_MS = 1000;

/**
 * A recipe parsed, validated and planned against the gadget registry, or a RecipeError
 * with every problem. A loaded recipe passes through unchanged (its options were given when
 * it was loaded).
 */
export function load(recipe: RecipeInput, opts: LoadOptions = {}): LoadedRecipe {
  if (isLoaded(recipe)) return recipe;
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const how = { ...(opts.set ? { inputs: opts.set } : {}), ...(opts.command ? { argv: opts.command } : {}) };
  if (typeof recipe === 'string') return loadRecipeFile(recipe, registry, limits, how);
  try {
    // JSON is YAML: an object goes through the same checks as a file
    return parseRecipe(JSON.stringify(recipe), RECIPE_OBJECT, registry, limits, how);
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    // lines and columns of text nobody wrote say nothing; the JSON path says where
    throw new RecipeError(err.problems.map(({ path: p, message }) => ({ where: RECIPE_OBJECT, path: p, message })));
  }
}

function isLoaded(recipe: RecipeInput): recipe is LoadedRecipe {
  return typeof recipe === 'object' && recipe !== null && 'positions' in recipe && 'recipe' in recipe;
}

/**
 * Run a recipe here: attach its steps, run its workload, write its artifacts, summary.json
 * and report.md into `out`, and judge. Resolves with the summary (passed, failed or error:
 * the verdict) and the files' paths; rejects with RecipeError or OptionError before anything
 * runs, CouldNotTraceError when nothing the recipe needs can be traced here, and
 * InterruptedError when stopped (both with the result that was written).
 */
export async function run(recipe: RecipeInput, opts: RunOptions = {}): Promise<RunResult> {
  const loaded = load(recipe, opts);
  useBtfOption(opts.btf);
  const user = workloadUser(loaded, opts.user);
  // the profile is the recipe's input: a bad one is a RecipeError before --out is touched
  const seccomp = seccompPlan(loaded);
  if (opts.export !== false) checkExportEnv(loaded);
  const maxDurationMs = opts.maxDuration === undefined ? undefined : durationOption('maxDuration', opts.maxDuration);
  const out = opts.out ?? path.join('out', loaded.recipe.name);
  prepareOutDir(out);
  const progress = opts.onProgress && progressObserver(opts.onProgress, opts.progressIntervalMs ?? DEFAULT_PROGRESS_MS, opts.log);
  const observers = [opts.observer, progress].filter((o): o is RunObserver => !!o);
  const summary = await runRecipe(loaded, {
    outDir: out,
    objectDir: opts.objects ?? defaultObjectDir(),
    maxDurationMs,
    user,
    updateBaseline: opts.updateBaseline,
    ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
    log: opts.log ?? (() => {}),
    observer: {
      attached: (steps) => observers.forEach((o) => o.attached(steps)),
      captured: () => observers.forEach((o) => o.captured()),
    },
    ...(opts.signal ? { signal: opts.signal } : {}),
    processSignals: opts.processSignals ?? false,
    ...(seccomp ? { seccomp } : {}),
    exportEvents: opts.export ?? true,
    ...(opts.actions === false ? {} : { actions: { user: actionUser(opts.user !== undefined ? user : undefined, invokingUser(), loaded.file) } }),
  });
  return settle(summary, paths(loaded, summary, out, path.join(out, RAW_DIR), opts.junit));
}

/**
 * Evaluate a recipe again over what an earlier run captured (`from`/raw): no root, no kernel.
 * Resolves and rejects as run() does; ReplayError when `from` holds no captured run.
 */
export async function replay(recipe: RecipeInput, opts: ReplayOptions): Promise<RunResult> {
  const loaded = load(recipe, opts);
  if (opts.export !== false) checkExportEnv(loaded);
  const out = opts.out ?? opts.from;
  prepareOutDir(out);
  const summary = await replayRecipe(loaded, opts.from, {
    outDir: out,
    ...(opts.updateBaseline ? { updateBaseline: true } : {}),
    ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    exportEvents: opts.export ?? true,
  });
  return settle(summary, paths(loaded, summary, out, path.join(opts.from, RAW_DIR), opts.junit));
}

/** Check a recipe without running it (no root needed): its problems, each with file:line:col and JSON path, instead of a throw. */
export function validate(recipe: RecipeInput, opts: LoadOptions = {}): ValidateResult {
  const file = typeof recipe === 'string' ? recipe : isLoaded(recipe) ? recipe.file : RECIPE_OBJECT;
  try {
    const loaded = load(recipe, opts);
    seccompPlan(loaded);
    return { ok: true, file, recipe: loaded.recipe, problems: [] };
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    return { ok: false, file, problems: err.problems as Problem[] };
  }
}

/** A run's end as the caller sees it: the verdict resolves; could-not-trace and interrupted reject, with the result. */
export function settle(summary: Summary, files: RunPaths): RunResult {
  const result: RunResult = { ...summary, paths: files };
  if (summary.status === 'could_not_trace') {
    throw new CouldNotTraceError(`${summary.recipe}: could not trace here — ${summary.steps.filter((s) => s.reason).map((s) => `${s.id}: ${s.reason}`).join('; ') || summary.reasons.join('; ')}`, result);
  }
  if (summary.status === 'interrupted') throw new InterruptedError(result);
  return result;
}

export function paths(loaded: LoadedRecipe, summary: Summary, out: string, raw: string, junit: string | undefined): RunPaths {
  const abs = (p: string) => path.resolve(p);
  const report = junitPath(loaded, out, junit);
  return {
    out: abs(out),
    summary: abs(artifactPath(out, 'summary.json')),
    report: abs(artifactPath(out, 'report.md')),
    html: abs(artifactPath(out, 'report.html')),
    raw: abs(raw),
    ...(report !== undefined ? { junit: abs(report) } : {}),
    steps: Object.fromEntries(summary.steps.map((s) => [s.id, s.artifacts.map((a) => abs(artifactPath(out, a)))])),
  };
}

/** The recipe's seccomp profile read and checked (a RecipeError pointing into it), when it has one. */
function seccompPlan(loaded: LoadedRecipe): SeccompPlan | undefined {
  const { seccomp, run: command } = loaded.recipe;
  return seccomp && command ? loadSeccompProfile(loaded.file, seccomp) : undefined;
}

/** Who runs the workload; a user this machine does not know (or root named by the recipe) is an error before anything runs. */
function workloadUser(loaded: LoadedRecipe, option: string | undefined) {
  try {
    return chooseUser(option, loaded.recipe.user);
  } catch (err) {
    if (!(err instanceof WorkloadUserError)) throw err;
    if (option !== undefined) throw new OptionError('user', err.message);
    throw new RecipeError([{ where: loaded.file, path: 'user', message: err.message }]);
  }
}

/** The export's header secrets come from the environment: a variable that is not set is found before anything runs. */
export function checkExportEnv(loaded: LoadedRecipe): void {
  const otlp = loaded.recipe.export?.otlp;
  const missing = otlp ? missingHeaderEnv(otlp) : [];
  if (!missing.length) return;
  throw new RecipeError(missing.map(({ header, name }) => ({
    where: loaded.file,
    path: `export.otlp.headers.${header}`,
    message: `\${env:${name}}: ${name} is not set in gadget-run's environment (set it; under sudo pass it on: sudo --preserve-env=${name})`,
  })));
}

export function durationOption(option: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new OptionError(option, (err as Error).message);
  }
}

/** onProgress, fed from the runner's observer: at attach, every `everyMs` while capturing, and once captured. */
function progressObserver(onProgress: (p: RunProgress) => void, everyMs: number, log?: (line: string) => void): RunObserver {
  const steps: ObservedStep[] = [];
  let timer: NodeJS.Timeout | undefined;
  const tell = (phase: RunProgress['phase']) => {
    try {
      onProgress({ phase, steps: steps.map((s) => ({ id: s.id, gadget: s.gadget, ...s.progress() })) });
    } catch (err) {
      // the caller's callback must not stop the run (it runs on a timer, where a throw would end the process)
      log?.(`onProgress threw: ${(err as Error).message}`);
    }
  };
  return {
    attached(group) {
      steps.push(...group);
      tell('attached');
      timer ??= setInterval(() => tell('capturing'), everyMs).unref();
    },
    captured() {
      clearInterval(timer);
      tell('captured');
    },
  };
}
