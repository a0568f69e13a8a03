/**
 * Failures explain themselves: for a failed assertion, the value of the side that was
 * computed (`$count(steps.execs[comm = "curl"]) = 0` → the count was 96), found by
 * evaluating the sides separately, and, where that side filters a step
 * (`steps.x[pred]`), the first events the filter picked. Runs inside the sandbox, where
 * the data is. Also the run-time half of "assertions that point at nothing fail": a field
 * that no record of a non-empty result has.
 */
import { jsonata } from '../deferred.ts';
import type { Node } from './references.ts';
import type { Evidence } from './summary.ts';

export const MAX_EVIDENCE_EVENTS = 10;
/** The fields that tell who did what, shown first; the rest follow up to MAX_KEYS. */
const PREFERRED = ['pid', 'ppid', 'comm', 'container_name', 'args', 'path', 'cmd', 'operation', 'saddr', 'daddr', 'dport', 'sport', 'addr', 'port', 'tpid', 'tcomm', 'signal_name', 'cap_name', 'fs', 'source', 'target', 'ret', 'err_name', 'err'];
const NOISE = new Set(['timestamp', 'tid', 'uid', 'gid', 'mntns_id', 'cgroup_id']);
const MAX_KEYS = 8;
const COMPARISONS = new Set(['=', '!=', '<', '<=', '>', '>=', 'in']);

/** A step field that resolves to nothing although the step has records, as a message; or undefined. */
export function unresolvedReads(reads: { step: string; field: string }[], steps: Record<string, unknown>): string | undefined {
  for (const { step, field } of reads) {
    const records = asList(steps[step]).filter((r) => r !== null && typeof r === 'object' && !Array.isArray(r)) as Record<string, unknown>[];
    if (!records.length) continue;
    if (records.some((r) => Object.hasOwn(r, field))) continue;
    const have = new Set<string>();
    for (const r of records.slice(0, 100)) for (const k of Object.keys(r)) have.add(k);
    return `steps.${step}.${field} resolves to nothing: none of the ${records.length} records of steps.${step} has "${field}" (they have: ${[...have].join(', ')})`;
  }
  return undefined;
}

const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

/** The evidence of an assertion that did not hold, or undefined when there is nothing more to say than its value. */
export async function evidenceOf(expr: string, input: unknown): Promise<Evidence | undefined> {
  const side = await culprit(expr, jsonata(expr).ast() as Node, 0, expr.length, input);
  if (!side) return undefined;
  const evidence: Evidence = { expr: side.text, value: side.value };
  const filtered = filteredStep(side.text);
  if (filtered) {
    try {
      const picked = asList(await jsonata(filtered).evaluate(input));
      evidence.total = picked.length;
      evidence.events = picked.slice(0, MAX_EVIDENCE_EVENTS).map(brief);
    } catch {
      // the side evaluated as a whole; its filter alone may not (a variable bound outside it)
    }
  }
  return evidence;
}

/**
 * The part of the expression that made it false: in `A and B` the first conjunct that is
 * not true, recursively; in a comparison its left side, unless that is a literal (then the
 * right one). `[start, end)` is the node's span in the text.
 */
async function culprit(expr: string, node: Node, start: number, end: number, input: unknown): Promise<{ text: string; value: unknown } | undefined> {
  if (node.type === 'block' && Array.isArray(node.expressions) && node.expressions.length === 1) {
    const inner = trimParens(expr, start, end);
    if (inner) return culprit(expr, node.expressions[0] as Node, inner[0], inner[1], input);
  }
  if (node.type !== 'binary') return undefined;
  const op = String(node.value);
  const opEnd = node.position ?? 0;
  const left: [number, number] = [start, opEnd - op.length];
  const right: [number, number] = [opEnd, end];
  if (op === 'and') {
    for (const [child, span] of [[node.lhs, left], [node.rhs, right]] as [Node, [number, number]][]) {
      const text = expr.slice(...span).trim();
      if ((await evaluateText(text, input)) !== true) return (await culprit(expr, child, ...span, input)) ?? { text, value: await evaluateText(text, input) };
    }
    return undefined;
  }
  if (!COMPARISONS.has(op)) return undefined;
  const literal = (n: Node) => ['number', 'string', 'value'].includes(n.type);
  const [span] = literal(node.lhs as Node) && !literal(node.rhs as Node) ? [right] : [left];
  const text = expr.slice(...span).trim();
  return { text, value: await evaluateText(text, input) };
}

async function evaluateText(text: string, input: unknown): Promise<unknown> {
  try {
    return await jsonata(text).evaluate(input);
  } catch (err) {
    return `(could not evaluate: ${(err as Error).message})`;
  }
}

/** `(x)` spanning exactly [start, end) → the span inside the parentheses. */
function trimParens(expr: string, start: number, end: number): [number, number] | undefined {
  const text = expr.slice(start, end);
  const open = start + text.indexOf('(');
  const close = start + text.lastIndexOf(')');
  if (text.trim().startsWith('(') && text.trim().endsWith(')')) return [open + 1, close];
  return undefined;
}

/** `steps.<id>[…]`, the first filter on a step in the text, with its brackets matched (strings skipped). */
export function filteredStep(text: string): string | undefined {
  const m = /(?:^|[^\w.$])(\$\$\.|\$\.)?steps\.([A-Za-z_]\w*)\[/.exec(text);
  if (!m) return undefined;
  const begin = m.index + m[0].length - `steps.${m[2]}[`.length - (m[1]?.length ?? 0);
  let depth = 0;
  for (let i = m.index + m[0].length - 1; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'") {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === '\\') i++;
    } else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return text.slice(begin, i + 1);
  }
  return undefined;
}

/** An event cut to the fields that tell who did what. */
function brief(event: unknown): Record<string, unknown> {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return { value: event };
  const e = event as Record<string, unknown>;
  const keys = [...PREFERRED.filter((k) => Object.hasOwn(e, k)), ...Object.keys(e).filter((k) => !PREFERRED.includes(k) && !NOISE.has(k))].slice(0, MAX_KEYS);
  return Object.fromEntries(keys.map((k) => [k, e[k]]));
}

/** `pid 7 comm curl args curl https://x` — one event on one line, for terminals and failure texts. */
export function eventLine(e: Record<string, unknown>): string {
  return Object.entries(e)
    .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(' ') : typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** The evidence as lines of text: the value, then the events. */
export function evidenceLines(ev: Evidence): string[] {
  const value = JSON.stringify(ev.value) ?? 'nothing';
  const lines = [`${ev.expr} was ${value.length > 200 ? `${value.slice(0, 200)}… (${value.length} characters)` : value}`];
  if (ev.events?.length) {
    lines.push(`first ${ev.events.length} of ${ev.total ?? ev.events.length} events it picked:`);
    for (const e of ev.events) lines.push(`  ${eventLine(e)}`);
  }
  return lines;
}
