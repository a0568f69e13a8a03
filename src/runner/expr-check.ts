/**
 * Static checks of the JSONata in a recipe, from its syntax tree, so that an assertion
 * that points at nothing fails `validate` instead of passing every run: every
 * `steps.<id>` names a step; where a step's result shape is known (the gadget's fields,
 * or a transform that ends in an object constructor with literal keys) every field read
 * after it, or inside a filter on it, is one of them; every function called is JSONata's
 * or one the expression binds. Each issue carries its character index in the expression,
 * so the recipe error points inside the string.
 */
import { readsOf, type Node } from './references.ts';
import { nearest } from '../util/edit-distance.ts';

/** JSONata 2.x's built-in functions (test/runner/expr-check.test.ts checks each one against the library). */
export const JSONATA_FUNCTIONS: readonly string[] = [
  'sum', 'count', 'max', 'min', 'average', 'string', 'substring', 'substringBefore', 'substringAfter', 'lowercase',
  'uppercase', 'length', 'trim', 'pad', 'match', 'contains', 'replace', 'split', 'join', 'formatNumber', 'formatBase',
  'formatInteger', 'parseInteger', 'number', 'floor', 'ceil', 'round', 'abs', 'sqrt', 'power', 'random', 'boolean',
  'not', 'map', 'zip', 'filter', 'single', 'reduce', 'sift', 'keys', 'lookup', 'append', 'exists', 'spread', 'merge',
  'reverse', 'each', 'error', 'assert', 'type', 'sort', 'shuffle', 'distinct', 'base64encode', 'base64decode',
  'encodeUrlComponent', 'encodeUrl', 'decodeUrlComponent', 'decodeUrl', 'eval', 'toMillis', 'fromMillis', 'clone',
  'now', 'millis',
];
const BUILTIN = new Set(JSONATA_FUNCTIONS);

/** What stats.<id> holds (evaluate.ts). */
export const STATS_FIELDS = ['status', 'events', 'lost'];

export interface ExprIssue {
  /** character index in the expression */
  at: number;
  message: string;
}

/** a step id → the fields of its result's records, or undefined when the shape is not known */
export type Shapes = Map<string, readonly string[] | undefined>;

const isNode = (v: unknown): v is Node =>
  v !== null && typeof v === 'object' && !(v instanceof RegExp) && typeof (v as Node).type === 'string';

/** Every node of the tree (parser tokens inherit from JSONata's symbols: test the type, not the prototype). */
function* nodes(value: unknown): Generator<Node> {
  if (Array.isArray(value)) {
    for (const v of value) yield* nodes(v);
    return;
  }
  if (!isNode(value)) return;
  yield value;
  for (const child of Object.values(value)) if (child !== null && typeof child === 'object') yield* nodes(child);
}

/** Where a name token starts: JSONata records the position after it. */
const startOf = (n: Node, extra = 0) => Math.max(0, (n.position ?? 0) - String(n.value ?? '').length - extra);

const list = (names: Iterable<string>) => [...names].join(', ') || 'none';

/** The fields of the records a transform makes, when it ends in an object constructor with literal keys. */
export function transformShape(ast: Node): string[] | undefined {
  let last: Node | undefined = ast;
  for (;;) {
    if (last?.type === 'block' && Array.isArray(last.expressions)) last = (last.expressions as Node[]).at(-1);
    else if (last?.type === 'path' && Array.isArray(last.steps)) last = last.steps.at(-1);
    else break;
  }
  if (!last || last.type !== 'unary' || last.value !== '{' || last.group || last.stages) return undefined;
  const pairs = last.lhs as [Node, Node][];
  if (!pairs.every(([k]) => k.type === 'string')) return undefined;
  return pairs.map(([k]) => String(k.value));
}

export function unknownFunctions(ast: Node): ExprIssue[] {
  const bound = new Set<string>();
  for (const n of nodes(ast)) {
    if (n.type === 'bind' && isNode(n.lhs) && n.lhs.type === 'variable') bound.add(String(n.lhs.value));
    if (n.type === 'lambda' && Array.isArray(n.arguments)) for (const a of n.arguments as Node[]) bound.add(String(a.value));
  }
  const issues: ExprIssue[] = [];
  for (const n of nodes(ast)) {
    if ((n.type !== 'function' && n.type !== 'partial') || !isNode(n.procedure) || n.procedure.type !== 'variable') continue;
    const name = String(n.procedure.value);
    if (BUILTIN.has(name) || bound.has(name)) continue;
    const near = nearest(name, [...BUILTIN, ...bound]);
    issues.push({
      at: startOf(n.procedure, 1),
      message: `unknown function $${name}${near ? ` (did you mean $${near}?)` : ''}: JSONata's functions are ${JSONATA_FUNCTIONS.map((f) => `$${f}`).join(', ')}; bind your own with $name := function($x) { … }`,
    });
  }
  return issues;
}

/** `steps.<id>` and `stats.<id>` name steps; fields read after a step with a known shape are its fields. */
export function unknownReferences(ast: Node, shapes: Shapes): ExprIssue[] {
  const issues: ExprIssue[] = [];
  readsOf(ast, ({ root, id, rest }) => {
    const name = String(id.value);
    if (!shapes.has(name)) {
      issues.push({ at: startOf(id), message: `unknown step "${name}" in ${root}.${name} (steps: ${list(shapes.keys())})` });
      return;
    }
    const fields = root === 'stats' ? STATS_FIELDS : shapes.get(name);
    if (!fields) return;
    const what = root === 'stats' ? `stats.${name}` : `step ${name}'s records`;
    for (const f of fieldReads(id, rest)) {
      if (!fields.includes(f.field)) issues.push({ at: startOf(f.node), message: `unknown field "${f.field}" of ${what} (fields: ${list(fields)})` });
    }
  });
  return issues;
}

export interface FieldRead {
  field: string;
  node: Node;
}

/**
 * The field names read from a step's records: the name after the id (steps.x.comm) and
 * the first name of each path inside a filter on the id (steps.x[comm = "sh"]). Deeper
 * names read inside a field's value, whose shape is not known.
 */
export function fieldReads(id: Node, rest: Node[]): FieldRead[] {
  const out: FieldRead[] = [];
  const next = rest[0];
  if (next?.type === 'name') out.push({ field: String(next.value), node: next });
  for (const stage of [...((id.stages as Node[]) ?? []), ...((id.predicate as Node[]) ?? [])]) {
    if (stage.type === 'filter') recordContext(stage.expr as Node, out);
  }
  return out;
}

/** Names read in the context of one record: the head of each path, in operators and function arguments. */
function recordContext(node: unknown, out: FieldRead[]): void {
  if (Array.isArray(node)) return node.forEach((n) => recordContext(n, out));
  if (!isNode(node)) return;
  if (node.type === 'path') {
    const head = node.steps?.[0];
    if (head?.type === 'name' && !head.stages && !head.predicate) out.push({ field: String(head.value), node: head });
    return;
  }
  if (node.type === 'name') {
    out.push({ field: String(node.value), node });
    return;
  }
  // a lambda's body and a nested filter have contexts of their own
  if (node.type === 'lambda' || node.type === 'filter') return;
  for (const [key, child] of Object.entries(node)) {
    if (key === 'procedure') continue;
    if (child !== null && typeof child === 'object') recordContext(child, out);
  }
}

/** Every `steps.<id>` field read, for the run-time check that each resolves to something. */
export function stepFieldReads(ast: Node): { step: string; field: string }[] {
  const out: { step: string; field: string }[] = [];
  readsOf(ast, ({ root, id, rest }) => {
    if (root !== 'steps') return;
    for (const f of fieldReads(id, rest)) out.push({ step: String(id.value), field: f.field });
  });
  return out;
}

