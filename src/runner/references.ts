/**
 * Which steps a JSONata assertion reads, from its syntax tree (jsonata(expr).ast()):
 * `steps.<id>…`, `stats.<id>…`, `$$.steps.<id>…` and `$.steps.<id>…` at the root name
 * one step. Anything else that could reach the input's `steps` or `stats` as a whole
 * (`steps` alone, `steps[...]` — a filter, which JSONata applies to the whole object —,
 * `steps.*`, `$$`, `$` at the root, `**`) counts as reading every step: when unsure,
 * load it. Evaluation loads a step's events only when something reads them.
 */
import { jsonata } from '../deferred.ts';

export interface Reads {
  /** steps whose events (steps.<id>) are read; 'all' when that cannot be told */
  events: Set<string> | 'all';
  /** steps read at all (steps.<id> or stats.<id>) */
  steps: Set<string> | 'all';
}

export type Node = { type: string; value?: unknown; position?: number; steps?: Node[]; [key: string]: unknown };

/** A `steps.<id>…` or `stats.<id>…` read from the root: the id's node and the path steps after it. */
export interface StepPath {
  root: 'steps' | 'stats';
  id: Node;
  rest: Node[];
}

const ROOTS = new Set(['steps', 'stats']);

export function readsOf(expr: string | Node, onPath?: (p: StepPath) => void): Reads {
  const events = new Set<string>();
  const stats = new Set<string>();
  let allEvents = false;
  let allStats = false;
  const all = (key: string) => (key === 'steps' ? (allEvents = true) : (allStats = true));
  const name = (id: string, key: string) => (key === 'steps' ? events : stats).add(id);

  const walk = (value: unknown, atRoot: boolean): void => {
    if (Array.isArray(value)) return value.forEach((v) => walk(v, atRoot));
    // parser tokens inherit from JSONata's symbol objects: skip only what is not a node
    if (value === null || typeof value !== 'object' || value instanceof RegExp || typeof (value as Node).type !== 'string') return;
    const node = value as Node;
    if (node.type === 'path' && Array.isArray(node.steps)) return walkPath(node.steps, atRoot);
    if (node.type === 'name' && ROOTS.has(node.value as string)) all(node.value as string);
    if (node.type === 'variable' && (node.value === '$' || (node.value === '' && atRoot))) {
      allEvents = allStats = true;
    }
    if (node.type === 'descendant') allEvents = allStats = true;
    for (const [key, child] of Object.entries(node)) {
      // predicates, stages and group-by run in the context of each item, not the root
      walk(child, atRoot && !['stages', 'predicate', 'group', 'focus', 'tuple'].includes(key));
    }
  };

  const walkPath = (steps: Node[], atRoot: boolean): void => {
    let i = 0;
    const first = steps[0];
    const fromRoot = first?.type === 'variable' && (first.value === '$' || (first.value === '' && atRoot)) && !hasStages(first);
    if (fromRoot) i = 1;
    const head = steps[i];
    if ((fromRoot || (atRoot && i === 0)) && head?.type === 'name' && ROOTS.has(head.value as string) && !hasStages(head)) {
      const id = steps[i + 1];
      if (id?.type === 'name') {
        name(id.value as string, head.value as string);
        onPath?.({ root: head.value as 'steps' | 'stats', id, rest: steps.slice(i + 2) });
        walkRest(steps.slice(i + 1));
        return;
      }
      all(head.value as string);
      walkRest(steps.slice(i + 1));
      return;
    }
    if (fromRoot && !head) allEvents = allStats = true;
    walk(steps[0], atRoot);
    walkRest(steps.slice(1));
  };

  const walkRest = (rest: Node[]) => {
    for (const step of rest) walk(step, false);
  };

  walk(typeof expr === 'string' ? jsonata(expr).ast() : expr, true);
  return {
    events: allEvents ? 'all' : events,
    steps: allEvents || allStats ? 'all' : new Set([...events, ...stats]),
  };
}

function hasStages(node: Node): boolean {
  return Array.isArray(node.stages) || node.predicate !== undefined || node.group !== undefined;
}

export function includes(set: Set<string> | 'all', id: string): boolean {
  return set === 'all' || set.has(id);
}
