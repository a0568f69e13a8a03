/**
 * Recipe inputs: `inputs: {name: {type, default, description}}`, referenced
 * as `${{ inputs.name }}` in string values and set with `--set name=value`.
 *
 * Substitution happens on the parsed data, after YAML parsing, so a value can
 * never add YAML structure. Where a value lands decides how it is written:
 * - `run` (a shell script): never spliced in. The reference becomes a quoted
 *   expansion of an environment variable the workload receives
 *   (`"${GADGET_RUN_INPUT_NAME}"`), quoted for the spot it stands in.
 * - `transform` and assertion `expr` (JSONata): a literal (a JSON string for
 *   string and duration inputs), so a value cannot add to the expression.
 * - `filter`: commas are escaped, so a value cannot add a predicate.
 * - anything else: the text; a value that is only a reference takes the
 *   input's type (`duration: ${{ inputs.secs }}` with a number input is a number).
 */
import { excerpt, parseDuration } from '../steps/duration.ts';

export type InputType = 'string' | 'number' | 'boolean' | 'duration';
export type InputValue = string | number | boolean;

export interface InputSpec {
  type: InputType;
  default?: InputValue;
  description?: string;
}

export type InputProblem = { path: (string | number)[]; message: string };

const REFERENCE = /\$\{\{\s*(.*?)\s*\}\}/g;
const INPUT_NAME = /^inputs\.([A-Za-z_][A-Za-z0-9_]*)$/;

/** The environment variable a `run` script reads an input from. */
export function inputEnvName(name: string): string {
  return `GADGET_RUN_INPUT_${name.toUpperCase()}`;
}

/** `--set a=1 --set b=x` → {a: "1", b: "x"}; a missing `=` is an error naming the option. */
export function parseSets(sets: readonly string[], option = '--set'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`${option} ${JSON.stringify(excerpt(s))}: write ${option} name=value`);
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

/** A command-line string as a value of the input's type, or an error message with the bad value. */
function convert(name: string, spec: InputSpec, text: string): InputValue | string[] {
  const bad = (what: string) => [`input ${name}: ${JSON.stringify(excerpt(text))} is not ${what}`];
  switch (spec.type) {
    case 'number': {
      const n = Number(text);
      return text.trim() !== '' && Number.isFinite(n) ? n : bad('a number');
    }
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : bad('a boolean (true or false)');
    case 'duration':
      try {
        parseDuration(text);
        return text;
      } catch (err) {
        return [`input ${name}: ${(err as Error).message}`];
      }
    default:
      return text;
  }
}

/** The declared default, checked against the declared type. */
function checkDefault(name: string, spec: InputSpec): string | undefined {
  const d = spec.default;
  if (d === undefined) return undefined;
  if (spec.type === 'duration') {
    try {
      parseDuration(d as string | number);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (typeof d !== spec.type) return `the default ${JSON.stringify(d)} is not a ${spec.type}`;
  return undefined;
}

/**
 * Each declared input's value: --set, else its default. Unknown --set names,
 * values that are not of the type, and inputs with neither are problems.
 */
export function resolveInputs(declared: Record<string, InputSpec> | undefined, sets: Record<string, string>): { values: Map<string, InputValue>; problems: InputProblem[] } {
  const values = new Map<string, InputValue>();
  const problems: InputProblem[] = [];
  const names = Object.keys(declared ?? {});
  const known = names.length ? `declared: ${names.join(', ')}` : 'the recipe declares no inputs';
  for (const name of Object.keys(sets)) {
    if (!Object.hasOwn(declared ?? {}, name)) problems.push({ path: ['inputs'], message: `--set ${excerpt(name)}: no such input (${known})` });
  }
  const envNames = new Map<string, string>();
  for (const [name, spec] of Object.entries(declared ?? {})) {
    const clash = envNames.get(inputEnvName(name));
    if (clash) problems.push({ path: ['inputs', name], message: `inputs ${clash} and ${name} would share the environment variable ${inputEnvName(name)}; rename one` });
    envNames.set(inputEnvName(name), name);
    const bad = checkDefault(name, spec);
    if (bad) problems.push({ path: ['inputs', name, 'default'], message: `input ${name}: ${bad}` });
    if (Object.hasOwn(sets, name)) {
      const v = convert(name, spec, sets[name]);
      if (Array.isArray(v)) problems.push({ path: ['inputs', name], message: v[0] });
      else values.set(name, v);
    } else if (spec.default !== undefined) {
      values.set(name, spec.default);
    } else {
      problems.push({ path: ['inputs', name], message: `input ${name} has no default: set it with --set ${name}=VALUE` });
    }
  }
  return { values, problems };
}

type Context = 'shell' | 'jsonata' | 'filter' | 'text';

function contextOf(path: readonly (string | number)[]): Context {
  if (path.length === 1 && path[0] === 'run') return 'shell';
  const last = path[path.length - 1];
  if (path[0] === 'steps' && path.length === 3 && last === 'transform') return 'jsonata';
  if (path[0] === 'assertions' && path.length === 3 && last === 'expr') return 'jsonata';
  if (path[0] === 'steps' && path.length === 3 && last === 'filter') return 'filter';
  return 'text';
}

/**
 * Replace every `${{ inputs.x }}` in the recipe's string values (not in the
 * `inputs` block itself). Returns the environment the workload gets: one
 * variable per input the `run` script references.
 */
export function substituteInputs(data: Record<string, unknown>, values: ReadonlyMap<string, InputValue>, declared: readonly string[], problem: (path: (string | number)[], message: string) => void): Record<string, string> {
  const env: Record<string, string> = {};
  const known = declared.length ? `declared: ${declared.join(', ')}` : 'the recipe declares no inputs';
  const visit = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value === 'string') return substitute(value, path);
    if (Array.isArray(value)) return value.map((v, i) => visit(v, [...path, i]));
    if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (path.length === 0 && k === 'inputs') continue;
        (value as Record<string, unknown>)[k] = visit(v, [...path, k]);
      }
    }
    return value;
  };
  const substitute = (text: string, path: (string | number)[]): unknown => {
    if (!text.includes('${{')) return text;
    const context = contextOf(path);
    let whole: InputValue | undefined;
    const out = text.replace(REFERENCE, (ref, inner: string, offset: number) => {
      const m = INPUT_NAME.exec(inner);
      if (!m) {
        problem(path, `${excerpt(ref)}: only \${{ inputs.NAME }} can be used here`);
        return ref;
      }
      const name = m[1];
      if (!values.has(name)) {
        if (!declared.includes(name)) problem(path, `${excerpt(ref)}: no such input (${known})`);
        return ref;
      }
      const value = values.get(name)!;
      if (ref.length === text.length) whole = value;
      switch (context) {
        case 'shell':
          env[inputEnvName(name)] = String(value);
          return shellReference(text, offset, inputEnvName(name));
        case 'jsonata':
          return typeof value === 'string' ? JSON.stringify(value) : String(value);
        case 'filter':
          if (String(value).endsWith('\\')) problem(path, `input ${name}: a value ending in a backslash cannot be used in a filter`);
          return String(value).replace(/,/g, '\\,');
        default:
          return String(value);
      }
    });
    return context === 'text' && whole !== undefined ? whole : out;
  };
  visit(data, []);
  return env;
}

/**
 * The expansion of $name that means exactly its value at `offset` of a
 * POSIX shell script: inside double quotes `${name}`, inside single quotes
 * close them around a double-quoted expansion, elsewhere `"${name}"`.
 */
export function shellReference(script: string, offset: number, name: string): string {
  let quote: '' | "'" | '"' = '';
  for (let i = 0; i < offset; i++) {
    const c = script[i];
    if (quote === "'") {
      if (c === "'") quote = '';
    } else if (c === '\\') {
      i++; // an escaped character, in double quotes or outside
    } else if (c === '"') {
      quote = quote === '"' ? '' : '"';
    } else if (c === "'" && quote === '') {
      quote = "'";
    }
  }
  if (quote === '"') return `\${${name}}`;
  if (quote === "'") return `'"\${${name}}"'`;
  return `"\${${name}}"`;
}
