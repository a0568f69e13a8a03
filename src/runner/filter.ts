/**
 * Inspektor Gadget's filter syntax: `field==value`, `!=`, `>=`, `>`, `<=`,
 * `<`, `~regex`, `!~regex`; a comma joins predicates (AND) and `\,` escapes
 * a comma. Predicates the kernel can check are pushed into BPF constants,
 * the rest compile to JavaScript run on the decoded event.
 */

export type FilterOp = '==' | '!=' | '>=' | '>' | '<=' | '<' | '~' | '!~';

export interface Predicate {
  field: string;
  op: FilterOp;
  value: string;
  /** 0-based column of the predicate in the filter text */
  column: number;
}

export type FieldType = 'number' | 'string' | 'string[]' | 'boolean';

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
export function checkFilter(preds: Predicate[], fields: ReadonlyMap<string, FieldType>): FilterError | undefined {
  for (const p of preds) {
    const type = fields.get(p.field);
    if (!type) return new FilterError(`unknown field "${p.field}" (known: ${[...fields.keys()].join(', ')})`, p.column);
    if (p.op === '~' || p.op === '!~') {
      try {
        new RegExp(p.value);
      } catch (err) {
        return new FilterError(`${p.field}${p.op}${p.value}: invalid regular expression: ${(err as Error).message}`, p.column);
      }
    } else if (type === 'number' && !isNumber(p.value)) {
      return new FilterError(`${p.field} is a number; "${p.value}" is not`, p.column);
    } else if (type === 'boolean' && !['true', 'false'].includes(p.value)) {
      return new FilterError(`${p.field} is true or false; "${p.value}" is neither`, p.column);
    }
  }
  return undefined;
}

function isNumber(v: string): boolean {
  return v !== '' && Number.isFinite(Number(v));
}

/** BPF constant names for the fields every gadget's filter header checks (bpf/include/gadget.h). */
export const KERNEL_FILTER_CONSTANTS: Record<string, string> = {
  pid: 'targ_tgid',
  tid: 'targ_tid',
  uid: 'targ_uid',
  gid: 'targ_gid',
  comm: 'targ_comm',
  mntns_id: 'targ_mntns_id',
};
const TASK_COMM_LEN = 16;

/**
 * Whether a number fits the field's BPF constant and is not the value that
 * constant uses for "no filter" (0, or (u32)-1 for uid/gid): those stay in JavaScript.
 */
function kernelCanHold(field: string, n: number): boolean {
  const max = field === 'mntns_id' ? Number.MAX_SAFE_INTEGER : 0xffffffff;
  const none = field === 'uid' || field === 'gid' ? 0xffffffff : 0;
  return Number.isSafeInteger(n) && n >= 0 && n <= max && n !== none;
}

/**
 * Split predicates into BPF constants (equality on a field the gadget filters
 * in the kernel) and the rest, which run in JavaScript.
 */
export function splitFilter(preds: Predicate[], kernelFields: readonly string[]) {
  const constants: Record<string, number | string> = {};
  const user: Predicate[] = [];
  for (const p of preds) {
    const constant = KERNEL_FILTER_CONSTANTS[p.field];
    const pushable =
      p.op === '==' && constant && kernelFields.includes(p.field) && !(constant in constants) &&
      (p.field === 'comm' ? Buffer.byteLength(p.value) < TASK_COMM_LEN : kernelCanHold(p.field, Number(p.value)));
    if (pushable) constants[constant] = p.field === 'comm' ? p.value : Number(p.value);
    else user.push(p);
  }
  return { constants, user };
}

/**
 * JavaScript source of a boolean expression over locals named by `local(field)`.
 * Regexes are passed in `regexes` and referenced as R[i].
 */
export function compileFilter(
  preds: Predicate[],
  fields: ReadonlyMap<string, FieldType>,
  local: (field: string) => string,
): { source: string; regexes: RegExp[] } {
  const regexes: RegExp[] = [];
  const terms = preds.map((p) => {
    const type = fields.get(p.field)!;
    const v = type === 'string[]' ? `${local(p.field)}.join(' ')` : local(p.field);
    if (p.op === '~' || p.op === '!~') {
      regexes.push(new RegExp(p.value));
      return `${p.op === '!~' ? '!' : ''}R[${regexes.length - 1}].test(${type === 'number' ? `String(${v})` : v})`;
    }
    const rhs = type === 'number' ? String(Number(p.value)) : type === 'boolean' ? p.value : JSON.stringify(p.value);
    const js = { '==': '===', '!=': '!==', '>=': '>=', '>': '>', '<=': '<=', '<': '<' }[p.op];
    return `(${v} ${js} ${rhs})`;
  });
  return { source: terms.length ? terms.join(' && ') : 'true', regexes };
}
