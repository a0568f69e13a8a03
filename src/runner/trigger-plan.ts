/**
 * Steps that start and stop on other steps' events (`start_on`, `stop_on`,
 * `for_each`, `max_instances`, `scope`, `if_not_triggered`): checked against
 * the gadgets of both steps when the recipe loads, so a trigger that names an
 * unknown step or field, or steps that wait on each other, never runs.
 * src/runner/triggers.ts runs what this plans.
 */
import { whyNotLive } from '../steps/modes/index.ts';
import { checkFilter, FilterError, parseFilter, type Predicate } from '../steps/filter.ts';
import type { GadgetDefinition } from '../steps/types.ts';
import { nearest } from '../util/edit-distance.ts';
import { CONTAINER_KEYS, isContainerKey } from '../containers/table.ts';

/** Instances of a for_each step unless the recipe says max_instances. */
export const DEFAULT_MAX_INSTANCES = 8;

/** `scope: trigger` is the trigger event's cgroup and below. */
export const CGROUP_SCOPE = 'cgroup';

export type IfNotTriggered = 'fail' | 'skip' | 'empty';

/** `start_on:` / `stop_on:` as written. */
export interface TriggerSpec {
  step: string;
  filter?: string;
}

/** A trigger, checked: the step whose events it reads and the filter they pass. */
export interface TriggerOn {
  step: string;
  filter: Predicate[];
}

export interface TriggerPlan {
  /** absent: the step starts with the run (it may still stop on an event) */
  start?: TriggerOn;
  stop?: TriggerOn;
  /** one instance per distinct value of this field of the start event */
  forEach?: string;
  /** forEach is a container field (pod, container_name, …): looked up by the start event's cgroup_id as the trigger fires */
  forEachContainer?: true;
  maxInstances: number;
  /** [this step's field, or `cgroup`; the start event's field it takes its value from] */
  scope: [string, string][];
  ifNotTriggered: IfNotTriggered;
  /** loaded and attached with the run, its events kept from the trigger on (its first instance) */
  preload: boolean;
  /** the start event's fields an instance records in triggered_by (the filter's, for_each's, scope's) */
  uses: string[];
}

/** What a trigger check needs of a step: its keys as written, where it is, its gadget. */
export interface TriggerStep {
  spec: { id: string; start_on?: TriggerSpec; stop_on?: TriggerSpec; for_each?: string; max_instances?: number; scope?: 'trigger' | Record<string, string>; if_not_triggered?: IfNotTriggered; attach?: 'lazy' | 'preload' };
  /** its index in recipe.steps */
  index: number;
  def: GadgetDefinition;
}

/** (path, message, offset in the value): a problem at the recipe's file:line:col and JSON path. */
export type TriggerProblem = (path: (string | number)[], message: string, offsetInValue?: number) => void;

const TRIGGER_KEYS = ['for_each', 'max_instances', 'scope', 'if_not_triggered', 'attach'] as const;

/**
 * Check every step's trigger keys; returns the plan of each step that has
 * any, by step id. `known` is every step id the recipe names (steps rejected
 * earlier still count as existing), `quote(path)` is the offset of a scalar's
 * first character of content (1 for a quoted scalar), so filter columns land
 * on the right character.
 */
export function planTriggers(
  steps: TriggerStep[],
  known: string[],
  problem: TriggerProblem,
  quote: (path: (string | number)[]) => number,
  sequential: boolean,
): Map<string, TriggerPlan> {
  const byId = new Map(steps.map((s) => [s.spec.id, s]));
  const plans = new Map<string, TriggerPlan>();
  for (const s of steps) {
    const { spec, index } = s;
    const at = (...p: (string | number)[]) => ['steps', index, ...p];
    if (!spec.start_on) {
      for (const key of TRIGGER_KEYS) if (spec[key] !== undefined) problem(at(key), `${key} is about a triggered step: give the step start_on: {step: …, filter: …}`);
    }
    if (spec.max_instances !== undefined && spec.for_each === undefined && spec.start_on) {
      problem(at('max_instances'), 'max_instances bounds for_each: without for_each the step starts once');
    }
    if (!spec.start_on && !spec.stop_on) continue;
    if (sequential) problem(at(spec.start_on ? 'start_on' : 'stop_on'), 'triggers need the steps to run at the same time: drop sequential: true');
    const start = spec.start_on && trigger(s, 'start_on', spec.start_on, byId, known, problem, quote);
    const stop = spec.stop_on && trigger(s, 'stop_on', spec.stop_on, byId, known, problem, quote);
    const source = start && byId.get(start.step)!.def;
    const uses = new Set(start?.filter.map((p) => p.field));
    let forEachContainer = false;
    if (spec.for_each !== undefined && source) {
      const name = spec.for_each;
      const hasCgroup = source.fields.some((f) => f.name === 'cgroup_id');
      if (source.fields.some((f) => f.name === name)) {
        uses.add(name);
      } else if (isContainerKey(name)) {
        if (hasCgroup) {
          forEachContainer = true;
          uses.add('cgroup_id');
        } else {
          problem(at('for_each'), `${name} is a container field: an event carries it only through its cgroup_id (joined with the node's containers), and the trigger step ${start!.step}'s gadget ${source.id} has no cgroup_id, so its events cannot carry ${name} (key on one of its fields: ${source.fields.map((f) => f.name).join(', ')})`);
        }
      } else {
        const containers: readonly string[] = hasCgroup ? CONTAINER_KEYS : [];
        problem(at('for_each'), unknownField(name, source, `the trigger step ${start!.step}'s gadget`, containers.length ? `; container fields: ${containers.join(', ')}` : '', containers));
      }
    }
    const scope: [string, string][] = [];
    if (spec.scope !== undefined && source) {
      const entries = spec.scope === 'trigger' ? [[CGROUP_SCOPE, 'cgroup_id']] : Object.entries(spec.scope);
      for (const [mine, theirs] of entries) {
        const path = spec.scope === 'trigger' ? at('scope') : at('scope', mine);
        if (mine !== CGROUP_SCOPE && !s.def.fields.some((f) => f.name === mine)) {
          problem(path, unknownField(mine, s.def, `${spec.id}'s gadget`, `, or ${CGROUP_SCOPE} for the trigger's cgroup and below`));
          continue;
        }
        if (!checkField(theirs, source, start!.step, path, problem, spec.scope === 'trigger' ? ` (scope: trigger narrows to the trigger event's cgroup_id; ${start!.step} has none: map fields instead, e.g. {pid: pid})` : '')) continue;
        uses.add(theirs);
        scope.push([mine, theirs]);
      }
    }
    // preloaded where it can be unless the recipe says lazy: loading at the trigger takes 1-2 s on a busy node (bench/triggers.ts)
    const byCgroup = scope.some(([mine]) => mine === CGROUP_SCOPE);
    const notLive = whyNotLive(s.def);
    const preload = spec.attach === 'preload' || (spec.attach === undefined && !!spec.start_on && !notLive && !byCgroup);
    if (spec.attach === 'preload' && notLive) problem(at('attach'), `a preloaded step keeps its events from the trigger on as they come; ${notLive}: use attach: lazy`);
    if (spec.attach === 'preload' && byCgroup) {
      problem(at('attach'), `a preloaded step is scoped in user space, by its events' fields; the cgroup scope (a subtree) is the kernel's: use attach: lazy, or scope by a field (e.g. {cgroup_id: cgroup_id}, that cgroup only)`);
    }
    plans.set(spec.id, {
      ...(start ? { start } : {}),
      ...(stop ? { stop } : {}),
      ...(spec.for_each !== undefined ? { forEach: spec.for_each } : {}),
      ...(forEachContainer ? { forEachContainer: true as const } : {}),
      maxInstances: spec.max_instances ?? DEFAULT_MAX_INSTANCES,
      scope,
      ifNotTriggered: spec.if_not_triggered ?? 'fail',
      preload,
      uses: [...uses],
    });
  }
  for (const cycle of startCycles(plans)) {
    const first = byId.get(cycle[0]);
    if (first) problem(['steps', first.index, 'start_on', 'step'], `steps ${[...cycle, cycle[0]].join(' → ')} start on each other's events: none of them would ever start`);
  }
  return plans;
}

function trigger(
  s: TriggerStep,
  key: 'start_on' | 'stop_on',
  spec: TriggerSpec,
  byId: Map<string, TriggerStep>,
  known: string[],
  problem: TriggerProblem,
  quote: (path: (string | number)[]) => number,
): TriggerOn | undefined {
  const path = ['steps', s.index, key];
  if (spec.step === s.spec.id) {
    problem([...path, 'step'], `a step cannot ${key === 'start_on' ? 'start' : 'stop'} on its own events: name another step`);
    return undefined;
  }
  const source = byId.get(spec.step);
  if (!source) {
    // a step the schema or the registry rejected is already a problem of its own
    if (!known.includes(spec.step)) {
      const near = nearest(spec.step, known, 2);
      problem([...path, 'step'], `unknown step "${spec.step}" (${near ? `did you mean ${near}? ` : ''}steps: ${known.join(', ')})`);
    }
    return undefined;
  }
  const notLive = whyNotLive(source.def);
  if (notLive) {
    problem([...path, 'step'], `step ${spec.step} emits no events while it runs, so it cannot trigger: ${notLive}`);
    return undefined;
  }
  let filter: Predicate[] = [];
  if (spec.filter !== undefined) {
    try {
      filter = parseFilter(spec.filter);
      const err = checkFilter(filter, source.def.fields);
      if (err) throw err;
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      problem([...path, 'filter'], `${err.message} — the filter reads ${spec.step}'s events (${source.def.id})`, quote([...path, 'filter']) + err.column);
      // reported; the step's other keys are still checked against the source
      filter = [];
    }
  }
  return { step: spec.step, filter };
}

function checkField(name: string, def: GadgetDefinition, step: string, path: (string | number)[], problem: TriggerProblem, hint = ''): boolean {
  if (def.fields.some((f) => f.name === name)) return true;
  problem(path, unknownField(name, def, `the trigger step ${step}'s gadget`) + hint);
  return false;
}

function unknownField(name: string, def: GadgetDefinition, whose: string, more = '', alsoKnown: readonly string[] = []): string {
  const names = def.fields.map((f) => f.name);
  const near = nearest(name, [...names, ...alsoKnown], 2);
  return `unknown field "${name}" of ${whose} ${def.id} (${near ? `did you mean ${near}? ` : ''}known: ${names.join(', ')}${more})`;
}

/** Each cycle of start_on edges once, from its first step in recipe order. */
function startCycles(plans: Map<string, TriggerPlan>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  for (const id of plans.keys()) {
    const path: string[] = [];
    let at: string | undefined = id;
    while (at !== undefined && !done.has(at) && !path.includes(at)) {
      path.push(at);
      at = plans.get(at)?.start?.step;
    }
    if (at !== undefined && path.includes(at)) cycles.push(path.slice(path.indexOf(at)));
    for (const p of path) done.add(p);
  }
  return cycles;
}

