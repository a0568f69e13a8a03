/**
 * The recipe's `egress:` block: checked where it is written, then run as a
 * step of its own (`egress`, gadget audit/egress) whose allow-list is every
 * entry spelled out — the recipe's, the baseline's, loopback and the
 * resolvers when allowed — so summary.json shows exactly what was enforced.
 * Block mode adds the assertion that nothing was refused; a baseline makes
 * every destination a key of the step's baseline, so a new one fails the run.
 */
import path from 'node:path';
import { AllowError, defaultEntries, nameRules, parseAllow, readResolvers, type Rule } from '../egress/allow.ts';
import { checkBaselinePath, readBaseline, resolveBaseline } from './baseline.ts';

export const EGRESS_STEP = 'egress';
export const EGRESS_GADGET = 'audit/egress';

export interface EgressSpec {
  mode: 'audit' | 'block';
  allow?: string[];
  allow_loopback?: boolean;
  allow_resolver?: boolean;
  baseline?: string;
}

/** Where each enforced entry came from, as summary.json says it. */
export type EntrySource = 'recipe' | 'baseline' | 'allow_loopback' | 'allow_resolver';

export interface EgressEntry {
  entry: string;
  from: EntrySource;
}

type Problem = (path: (string | number)[], message: string) => void;

/**
 * The step and assertion the block stands for, or undefined (with problems)
 * when it cannot run. `recipeFile` locates the baseline; `resolvConf` the resolvers.
 */
export function planEgress(
  spec: EgressSpec,
  ctx: { recipeFile: string; hasRun: boolean; stepIds: string[]; resolvConf?: string },
  problem: Problem,
): { step: Record<string, unknown> & { id: string; gadget: string }; assertion?: { name: string; expr: string }; entries: EgressEntry[] } | undefined {
  let ok = true;
  const bad: Problem = (p, m) => {
    ok = false;
    problem(p, m);
  };
  if (!ctx.hasRun) bad(['egress'], 'egress is enforced on the workload\'s cgroup: give the recipe a run command');
  if (ctx.stepIds.includes(EGRESS_STEP)) bad(['egress'], `a step is already named "${EGRESS_STEP}", the id the egress block's step takes: rename that step`);
  const entries: EgressEntry[] = [];
  const rules: Rule[] = [];
  const add = (entry: string, from: EntrySource, where: (string | number)[]) => {
    try {
      rules.push(parseAllow(entry));
      entries.push({ entry, from });
    } catch (err) {
      if (!(err instanceof AllowError)) throw err;
      bad(where, err.message);
    }
  };
  (spec.allow ?? []).forEach((e, i) => add(e, 'recipe', ['egress', 'allow', i]));
  if (spec.baseline !== undefined) {
    const why = checkBaselinePath(spec.baseline);
    if (why || !spec.baseline.endsWith('.json')) bad(['egress', 'baseline'], why ?? 'an egress baseline is a .json array of destinations');
    else for (const e of baselineEntries(ctx.recipeFile, spec.baseline, bad)) add(e, 'baseline', ['egress', 'baseline']);
  }
  const loopback = spec.allow_loopback ?? true;
  const resolvers = spec.allow_resolver ?? true ? readResolvers(ctx.resolvConf) : [];
  for (const e of defaultEntries({ loopback, resolvers: [] })) add(e, 'allow_loopback', ['egress', 'allow_loopback']);
  for (const e of defaultEntries({ loopback: false, resolvers })) add(e, 'allow_resolver', ['egress', 'allow_resolver']);
  for (const kind of ['name', 'wildcard'] as const) {
    try {
      nameRules(rules, kind);
    } catch (err) {
      bad(['egress', 'allow'], (err as Error).message);
    }
  }
  if (!ok) return undefined;
  const step = {
    id: EGRESS_STEP,
    gadget: EGRESS_GADGET,
    description: `egress allow-list (${spec.mode})`,
    params: {
      mode: spec.mode,
      allow: entries.map((e) => e.entry),
      // spelled out above, where summary.json shows them
      allow_loopback: false,
      allow_resolver: false,
      ...(spec.baseline !== undefined ? { report_allowed: true } : {}),
      // the defaults come last: attempts they allow are never reported
      defaults_from: entries.filter((e) => e.from === 'recipe' || e.from === 'baseline').length,
    },
    ...(spec.baseline !== undefined ? { baseline: { file: spec.baseline, key: 'destination' } } : {}),
  };
  const assertion = spec.mode === 'block'
    ? { name: 'egress: nothing refused', expr: `$count(steps.${EGRESS_STEP}[verdict = "refused"]) = 0` }
    : undefined;
  return { step, ...(assertion ? { assertion } : {}), entries };
}

/** The baseline's destinations; a file not there yet is empty (--update-baseline writes it). */
function baselineEntries(recipeFile: string, file: string, bad: Problem): string[] {
  try {
    return readBaseline(resolveBaseline(path.dirname(path.resolve(recipeFile)), file)) ?? [];
  } catch (err) {
    bad(['egress', 'baseline'], (err as Error).message);
    return [];
  }
}
