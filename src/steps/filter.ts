/**
 * Inspektor Gadget's filter syntax: `field==value`, `!=`, `>=`, `>`, `<=`,
 * `<`, `~regex`, `!~regex`; a comma joins predicates (AND) and `\,` escapes
 * a comma. Regexes are RE2 (linear time, as IG's Go regexps): a filter can
 * never hang the runner. Predicates the kernel can check are pushed into BPF
 * constants, the rest compile to JavaScript run on the decoded event.
 */
import type { RE2JS } from 're2js';
import { compileRe2 } from '../deferred.ts';
import type { FieldSpec, FieldType, FilterOp, KernelFilters, Predicate } from './types.ts';
import { editDistance, nearest } from '../util/edit-distance.ts';

// a parsed filter is part of what the runner hands a step (StepContext), so its types live with the step's
export type { FilterOp, Predicate } from './types.ts';

/** What the filter language needs to know about a field. */
export type FilterField = Pick<FieldSpec, 'name' | 'type' | 'decode' | 'names'>;

export type Regex = RE2JS;

export class FilterError extends Error {
  constructor(message: string, readonly column: number) {
    super(message);
    this.name = 'FilterError';
  }
}

const OPS: FilterOp[] = ['==', '!=', '>=', '<=', '!~', '>', '<', '~'];

export function parseFilter(text: string): Predicate[] {
  const out: Predicate[] = [];
  let part = '';
  let start = 0;
  const flush = (end: number) => {
    if (part.trim() !== '') out.push(parsePredicate(part, start));
    else if (end < text.length || out.length) throw new FilterError('empty predicate (two commas in a row, or a trailing comma?)', start);
    part = '';
    start = end + 1;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && text[i + 1] === ',') {
      part += ',';
      i++;
    } else if (c === ',') {
      flush(i);
    } else {
      part += c;
    }
  }
  flush(text.length);
  return out;
}

/** The filter text of predicates: parseFilter(formatFilter(p)) gives p back (columns aside). */
export function formatFilter(preds: readonly Pick<Predicate, 'field' | 'op' | 'value'>[]): string {
  return preds.map((p) => `${p.field}${p.op}${p.value.replace(/,/g, '\\,')}`).join(',');
}

function parsePredicate(part: string, column: number): Predicate {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*/.exec(part);
  if (!m) throw new FilterError(`"${part}" does not start with a field name (write field==value)`, column);
  const rest = part.slice(m[0].length);
  // `field=value` is accepted as `field==value`, as in IG's older syntax
  const op = OPS.find((o) => rest.startsWith(o)) ?? (rest.startsWith('=') ? '=' : undefined);
  if (!op) throw new FilterError(`"${part}": expected an operator after "${m[1]}" (one of ${OPS.join(' ')})`, column + m[0].length);
  const value = rest.slice(op.length).trim();
  return { field: m[1], op: op === '=' ? '==' : (op as FilterOp), value, column };
}

/** Check each predicate against the gadget's fields; returns the first problem. */
export function checkFilter(preds: Predicate[], fields: readonly FilterField[]): FilterError | undefined {
  const byName = new Map(fields.map((f) => [f.name, f]));
  for (const p of preds) {
    const f = byName.get(p.field);
    if (!f) {
      const near = nearest(p.field, [...byName.keys()], 2);
      return new FilterError(`unknown field "${p.field}" (${near ? `did you mean ${near}? ` : ''}known: ${[...byName.keys()].join(', ')})`, p.column);
    }
    const err = checkPredicate(p, f);
    if (err) return new FilterError(err, p.column);
  }
  return undefined;
}

function checkPredicate(p: Predicate, f: FilterField): string | undefined {
  if (p.op === '~' || p.op === '!~') {
    try {
      compileRe2(p.value);
    } catch (err) {
      return `${p.field}${p.op}${p.value}: invalid regular expression (filters use RE2 syntax, as Inspektor Gadget's Go regexps: no backreferences or lookaround): ${(err as Error).message}`;
    }
    return undefined;
  }
  if (f.type === 'number') {
    if (isNumber(p.value)) return undefined;
    if (!f.names) return `${p.field} is a number; "${p.value}" is not`;
    return nameValue(f.names, p.value) === undefined ? unknownName(p, f.names, 'a number or one of its names') : undefined;
  }
  if (f.type === 'boolean' && !['true', 'false'].includes(p.value)) return `${p.field} is true or false; "${p.value}" is neither`;
  if (f.names && (f.decode === 'enum' || f.decode === 'flags') && (p.op === '==' || p.op === '!=')) {
    // the field's text is names (or numbers the table lacks): anything else can never match
    const parts = f.decode === 'flags' ? p.value.split('|') : [p.value];
    const known = new Set(Object.values(f.names));
    const bad = parts.find((v) => !known.has(v) && !/^(\d+|0x[0-9a-f]+)$/.test(v) && !(v === '' && parts.length === 1));
    if (bad !== undefined) return unknownName({ ...p, value: bad }, f.names, 'one of its names');
  }
  return undefined;
}

function unknownName(p: Predicate, names: Readonly<Record<number, string>>, what: string): string {
  const all = Object.values(names);
  const close = all
    .map((n) => ({ n, d: editDistance(n.toUpperCase(), p.value.toUpperCase()) }))
    .filter(({ n, d }) => d <= Math.max(2, p.value.length / 3) || n.toUpperCase().includes(p.value.toUpperCase()))
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map(({ n }) => n);
  const hint = close.length ? `did you mean ${close.join(', ')}?` : `names: ${all.slice(0, 8).join(', ')}${all.length > 8 ? ', …' : ''}`;
  return `${p.field} takes ${what}; "${p.value}" is not one (${hint})`;
}

function isNumber(v: string): boolean {
  return v.trim() !== '' && Number.isFinite(Number(v));
}

function nameValue(names: Readonly<Record<number, string>>, name: string): number | undefined {
  for (const [k, v] of Object.entries(names)) if (v === name) return Number(k);
  return undefined;
}

/** The number a predicate on a number field compares with: its value, or the value of its name. */
function numberOf(p: Predicate, f: FilterField): number {
  return isNumber(p.value) ? Number(p.value) : nameValue(f.names ?? {}, p.value) ?? NaN;
}

/**
 * Split predicates into BPF constants (equality on a field the gadget filters
 * in the kernel, with a value the constant can hold) and the rest, which run
 * in JavaScript.
 */
export function splitFilter(preds: Predicate[], gadget: { fields: readonly FilterField[]; kernelFilters: KernelFilters }) {
  const fields = new Map(gadget.fields.map((f) => [f.name, f]));
  const constants: Record<string, number | string> = {};
  const user: Predicate[] = [];
  for (const p of preds) {
    const kf = Object.hasOwn(gadget.kernelFilters, p.field) ? gadget.kernelFilters[p.field] : undefined;
    const f = fields.get(p.field);
    let value: number | string | undefined;
    if (p.op === '==' && kf && f && !(kf.constant in constants)) {
      if (f.type === 'string') {
        // a char array constant: the value and its NUL must fit
        if (Buffer.byteLength(p.value) < kf.bytes && p.value !== '') value = p.value;
      } else {
        const n = numberOf(p, f);
        const max = kf.bytes >= 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * kf.bytes) - 1;
        // the constant's "no filter" value would let every event through instead of these
        if (Number.isSafeInteger(n) && n >= 0 && n <= max && n !== (kf.none ?? 0)) value = n;
      }
    }
    if (value !== undefined) constants[kf!.constant] = value;
    else user.push(p);
  }
  return { constants, user };
}

/**
 * JavaScript source of a boolean expression over locals named by `local(field)`.
 * Regexes are passed in `regexes` and referenced as R[i] (R[i].test(text)).
 */
export function compileFilter(
  preds: Predicate[],
  fields: readonly FilterField[],
  local: (field: string) => string,
): { source: string; regexes: Regex[] } {
  const byName = new Map(fields.map((f) => [f.name, f]));
  const regexes: Regex[] = [];
  const terms = preds.map((p) => {
    const f = byName.get(p.field);
    if (!f) throw new Error(`filter: unknown field "${p.field}" (checkFilter first)`);
    const type: FieldType = f.type;
    const v = type === 'string[]' ? `${local(p.field)}.join(' ')` : local(p.field);
    if (p.op === '~' || p.op === '!~') {
      regexes.push(compileRe2(p.value));
      return `${p.op === '!~' ? '!' : ''}R[${regexes.length - 1}].test(${type === 'string' || type === 'string[]' ? v : `String(${v})`})`;
    }
    const rhs = type === 'number' ? String(numberOf(p, f)) : type === 'boolean' ? String(p.value === 'true') : JSON.stringify(p.value);
    const js = { '==': '===', '!=': '!==', '>=': '>=', '>': '>', '<=': '<=', '<': '<' }[p.op];
    return `(${v} ${js} ${rhs})`;
  });
  return { source: terms.length ? terms.join(' && ') : 'true', regexes };
}

/** The filter as a test of decoded events (objects keyed by field name), for shapes that build events in JS. */
export function compileObjectFilter(preds: Predicate[], fields: readonly FilterField[]): (e: Record<string, unknown>) => boolean {
  const { source, regexes } = compileFilter(preds, fields, (f) => `e[${JSON.stringify(f)}]`);
  return new Function('R', `return (e) => ${source};`)(regexes);
}
