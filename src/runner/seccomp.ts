/**
 * A recipe's `seccomp: {profile, mode}`: the workload runs under an OCI
 * seccomp profile (the one advise/seccomp-profile writes), started through
 * a small launcher (bpf/launcher/seccomp_exec.c) that installs it with
 * libseccomp after the privilege drop and then execs the workload, so the
 * workload's first exec is already under it and is still traced.
 *
 * The profile is untrusted input read by root: it must sit in the recipe's
 * folder, is parsed and checked here (every problem with file:line:col and
 * its JSON path), and the launcher gets only the syscall numbers and the
 * mode. The mode replaces the profile's defaultAction for every syscall the
 * profile does not allow: log lets it through and the kernel logs it (which
 * audit/seccomp reports), errno fails it with EPERM.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { excerpt, formatBytes } from '../steps/duration.ts';
import { syscallNumber } from '../steps/names/index.ts';
import { SYSCALLS_X86_64 } from '../steps/names/syscalls-x86_64.ts';
import { editDistance } from '../util/edit-distance.ts';
import { packageRoot } from '../util/package-root.ts';
import { RecipeError, type Problem } from './errors.ts';
import { checkRecipeRelative, resolveInRecipeDir } from './recipe-dir.ts';
import { jsonPath, nodeOffset } from './yaml-place.ts';

export const SECCOMP_MODES = ['log', 'errno'] as const;
export type SeccompMode = (typeof SECCOMP_MODES)[number];

/** `seccomp:` as written. */
export interface SeccompSpec {
  profile: string;
  /** default errno */
  mode?: SeccompMode;
}

/** What summary.json records of the profile applied (workload.seccomp). */
export interface SeccompSummary {
  /** as the recipe names it, relative to its folder */
  profile: string;
  /** of the file's bytes */
  sha256: string;
  mode: SeccompMode;
  /** syscalls the profile allows */
  syscalls: number;
}

/** A profile read, checked and ready for the launcher. */
export interface SeccompPlan {
  summary: SeccompSummary;
  /** the allowed x86-64 syscall numbers, ascending */
  numbers: number[];
}

/** Larger profiles are refused unread (every x86-64 syscall by name is ~5 KB). */
export const MAX_PROFILE_BYTES = 1024 * 1024;

/** The architecture whose syscall names and numbers the profile is enforced with (src/steps/names/syscalls-x86_64.ts). */
export const NATIVE_ARCH = 'SCMP_ARCH_X86_64';

/** libseccomp's architecture names (OCI runtime-spec's list). */
const ARCHES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64',
  'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
];

/** defaultAction values of an allow-list profile (what happens to the rest: the recipe's mode decides that here). */
const REFUSING_ACTIONS = ['SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG'];

const TOP_FIELDS = ['defaultAction', 'defaultErrnoRet', 'architectures', 'archMap', 'syscalls', 'flags', 'listenerPath', 'listenerMetadata'];
const RULE_FIELDS = ['names', 'name', 'action', 'args', 'includes', 'excludes', 'comment', 'errnoRet'];

const SYSCALL_NAMES = Object.values(SYSCALLS_X86_64);

/** The launcher, built by `make -C bpf` next to the BPF objects' folder. */
export function launcherPath(): string {
  return process.env.GADGET_RUN_SECCOMP_LAUNCHER ?? path.join(packageRoot(), 'build/bin/gadget-run-seccomp');
}

/** What is wrong with `seccomp.profile` on its face (validate), or undefined. */
export function checkProfilePath(file: string): string | undefined {
  return checkRecipeRelative(file, 'seccomp profile', 'seccomp.json') ?? (file.endsWith('.json') ? undefined : `seccomp profile ${JSON.stringify(file)} must end in .json (an OCI seccomp profile)`);
}

/**
 * Read and check the profile a recipe names (relative to `recipeDir`): a
 * RecipeError whose problems point into the recipe (the path) or into the
 * profile (file:line:col and the JSON path inside it).
 */
export function loadSeccompProfile(recipeFile: string, spec: SeccompSpec): SeccompPlan {
  const recipeDir = path.dirname(recipeFile);
  const shown = path.join(recipeDir, spec.profile);
  const atRecipe = (message: string): RecipeError => new RecipeError([{ where: recipeFile, file: recipeFile, path: 'seccomp.profile', message }]);
  const why = checkProfilePath(spec.profile);
  if (why) throw atRecipe(why);
  const resolved = resolveInRecipeDir(recipeDir, spec.profile, 'seccomp profile');
  if ('error' in resolved) throw atRecipe(resolved.error);
  const bytes = readProfile(resolved.path, shown, atRecipe);
  const names = parseSeccompProfile(bytes.toString('utf8'), shown);
  return {
    summary: {
      profile: spec.profile,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      mode: spec.mode ?? 'errno',
      syscalls: names.length,
    },
    numbers: names.map((n) => syscallNumber(n)!).sort((a, b) => a - b),
  };
}

/** The file's bytes: a regular file of at most MAX_PROFILE_BYTES (a FIFO or a device would block or never end). */
function readProfile(file: string, shown: string, atRecipe: (message: string) => RecipeError): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw atRecipe(`seccomp profile ${shown} does not exist: learn one with advise/seccomp-profile (recipes/seccomp-learn.yaml) and put it there`);
    throw atRecipe(`cannot read the seccomp profile ${shown}: ${(err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw atRecipe(`seccomp profile ${shown} is not a regular file`);
    if (st.size > MAX_PROFILE_BYTES) throw atRecipe(`seccomp profile ${shown} is larger than ${formatBytes(MAX_PROFILE_BYTES)}; a profile lists syscall names`);
    const buf = Buffer.alloc(st.size);
    let used = 0;
    for (let n; used < buf.length && (n = fs.readSync(fd, buf, used, buf.length - used, null)) > 0; ) used += n;
    return buf.subarray(0, used);
  } finally {
    fs.closeSync(fd);
  }
}

/** A value for a message: a scalar as JSON (bounded), a container by its kind (it may be nested past any stack). */
function shown(v: Json | undefined): string {
  if (Array.isArray(v)) return 'an array';
  if (v !== null && typeof v === 'object') return 'an object';
  return typeof v === 'string' ? JSON.stringify(excerpt(v)) : String(v);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isEmpty = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);

/**
 * The syscall names an OCI seccomp profile allows, sorted and unique, or a
 * RecipeError with every problem (file:line:col, JSON path) when it cannot be
 * enforced as an allow-list on this machine. `file` names it in messages.
 */
export function parseSeccompProfile(text: string, file: string): string[] {
  const lines = new LineCounter();
  const place = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { where: `${file}:${line}:${col}`, file, line, col };
  };
  let data: Json;
  try {
    data = JSON.parse(text) as Json;
  } catch (err) {
    parseDocument(text, { lineCounter: lines });
    throw new RecipeError([{ ...place(jsonErrorOffset(text)), path: '', message: `not JSON: ${excerpt((err as Error).message, 200)} (a seccomp profile is the JSON advise/seccomp-profile writes)` }]);
  }
  // JSON is YAML: the same text parsed again only to know where each value is
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false });
  } catch {
    // nested too deep for the YAML parser's stack: problems are placed at the start
    doc = parseDocument('');
  }
  const problems: Problem[] = [];
  const problem = (p: (string | number)[], message: string, key = false) => problems.push({ ...place(nodeOffset(doc, p, key)), path: jsonPath(p), message });

  if (!isObject(data)) {
    problem([], 'a seccomp profile is a JSON object ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": [...], "syscalls": [...]}), as advise/seccomp-profile writes');
    throw new RecipeError(problems);
  }
  for (const key of Object.keys(data)) if (!TOP_FIELDS.includes(key)) problem([key], `unknown field "${excerpt(key)}" (known: ${TOP_FIELDS.join(', ')})`, true);

  const action = data.defaultAction;
  if (action === undefined) problem([], 'missing "defaultAction" (an allow-list profile has "SCMP_ACT_ERRNO")');
  else if (action === 'SCMP_ACT_ALLOW') problem(['defaultAction'], 'SCMP_ACT_ALLOW allows every syscall the profile does not list (a deny list): gadget-run enforces allow-lists, whose defaultAction refuses the rest (SCMP_ACT_ERRNO, as advise/seccomp-profile writes)');
  else if (typeof action !== 'string' || !REFUSING_ACTIONS.includes(action)) problem(['defaultAction'], `${shown(action)} is not a seccomp action (known: SCMP_ACT_ALLOW, ${REFUSING_ACTIONS.join(', ')})`);
  if (data.defaultErrnoRet !== undefined && !(Number.isInteger(data.defaultErrnoRet) && (data.defaultErrnoRet as number) >= 0)) problem(['defaultErrnoRet'], 'must be an errno number (it is not used: mode errno fails with EPERM)');
  if (!isEmpty(data.flags)) problem(['flags'], 'seccomp filter flags are not supported here: drop them (the recipe\'s mode decides what happens to the syscalls the profile does not allow)');
  for (const key of ['listenerPath', 'listenerMetadata']) if (!isEmpty(data[key]) && data[key] !== '') problem([key], 'a user-notification listener (SCMP_ACT_NOTIFY) is not supported here: drop it');

  checkArchitectures(data, problem);
  const names = allowedNames(data, problem);
  if (!problems.length && names.size === 0) problem(['syscalls'], 'allows no syscall: nothing could run under it');
  else if (!problems.length && !names.has('execve')) problem(['syscalls'], 'does not allow execve: the workload is started by an execve under the profile (advise/seccomp-profile always allows it); add "execve" to a rule');
  if (problems.length) throw new RecipeError(problems);
  return [...names].sort();
}

/**
 * Where JSON.parse gave up on `text` (V8 does not always say): the offset of
 * the first character that is not JSON, from a syntax-only scan.
 */
const MAX_DEPTH = 256;

export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string) => (text.startsWith(word, i) ? (i += word.length) : fail());
  const string = () => {
    if (text[i] !== '"') fail();
    for (i++; i < text.length && text[i] !== '"'; i++) {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (depth: number): void => {
    ws();
    const c = text[i];
    // deeper than any profile: where it got too deep is as good a place as any
    if (depth > MAX_DEPTH) fail();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          ws();
          string();
          ws();
          if (text[i] !== ':') fail();
          i++;
        }
        value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === close) return void i++;
        else fail();
      }
    }
    if (c === '"') return string();
    if (c === 't') return void literal('true');
    if (c === 'f') return void literal('false');
    if (c === 'n') return void literal('null');
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail();
    i += m![0].length;
  };
  try {
    value(0);
    ws();
    return i;
  } catch (at) {
    if (typeof at !== 'number') throw at;
    return Math.min(at, text.length);
  }
}

type ProblemAt = (p: (string | number)[], message: string, key?: boolean) => void;

/** The profile's architectures (and archMap's) must include this machine's; names are resolved with its table. */
function checkArchitectures(data: Record<string, Json>, problem: ProblemAt): void {
  const listed: string[] = [];
  const names = (value: Json | undefined, at: (string | number)[]) => {
    if (value === undefined || value === null) return;
    if (!Array.isArray(value)) return problem(at, 'must be an array of architecture names such as "SCMP_ARCH_X86_64"');
    value.forEach((a, i) => {
      if (typeof a !== 'string' || !ARCHES.includes(a)) problem([...at, i], `${shown(a)} is not an architecture (known: ${ARCHES.join(', ')})`);
      else listed.push(a);
    });
  };
  names(data.architectures, ['architectures']);
  if (data.archMap !== undefined && data.archMap !== null) {
    if (!Array.isArray(data.archMap)) problem(['archMap'], 'must be an array of {"architecture": …, "subArchitectures": […]}');
    else data.archMap.forEach((m, i) => {
      if (!isObject(m)) return problem(['archMap', i], 'must be an object {"architecture": …, "subArchitectures": […]}');
      names(m.architecture === undefined ? undefined : [m.architecture], ['archMap', i, 'architecture']);
      names(m.subArchitectures, ['archMap', i, 'subArchitectures']);
    });
  }
  // no architectures at all: the native one (runc's reading of the runtime spec)
  if (listed.length && !listed.includes(NATIVE_ARCH)) {
    problem([data.architectures !== undefined ? 'architectures' : 'archMap'], `the profile is for ${[...new Set(listed)].join(', ')}, not this machine's ${NATIVE_ARCH}: its syscall names would mean other syscalls here; learn the profile on ${NATIVE_ARCH}`);
  }
  if (process.arch !== 'x64') problem([], `this machine is ${process.arch}: gadget-run enforces seccomp profiles on x86-64 only (its syscall table)`);
}

/** Every name an SCMP_ACT_ALLOW rule without conditions lists; anything else is a problem. */
function allowedNames(data: Record<string, Json>, problem: ProblemAt): Set<string> {
  const names = new Set<string>();
  const rules = data.syscalls;
  if (rules === undefined) {
    problem([], 'missing "syscalls" (the rules: [{"names": [...], "action": "SCMP_ACT_ALLOW"}])');
    return names;
  }
  if (!Array.isArray(rules)) {
    problem(['syscalls'], 'must be an array of rules [{"names": [...], "action": "SCMP_ACT_ALLOW"}]');
    return names;
  }
  rules.forEach((rule, i) => {
    const at = ['syscalls', i];
    if (!isObject(rule)) return problem(at, 'a rule is an object {"names": [...], "action": "SCMP_ACT_ALLOW"}');
    for (const key of Object.keys(rule)) if (!RULE_FIELDS.includes(key)) problem([...at, key], `unknown field "${excerpt(key)}" of a rule (known: ${RULE_FIELDS.join(', ')})`, true);
    if (rule.action !== 'SCMP_ACT_ALLOW') {
      problem(rule.action === undefined ? at : [...at, 'action'], `${rule.action === undefined ? 'missing "action"' : `${shown(rule.action)}`}: only SCMP_ACT_ALLOW rules can be enforced here (the recipe's mode decides what happens to every syscall they do not allow)`);
    }
    if (!isEmpty(rule.args)) problem([...at, 'args'], 'argument conditions are not supported here: a rule allows its syscalls whatever their arguments (as advise/seccomp-profile writes them); drop args or the rule');
    for (const key of ['includes', 'excludes']) if (!isEmpty(rule[key])) problem([...at, key], `conditional rules (${key}) are not supported here: drop ${key} or the rule`);
    const list: { name: Json; at: (string | number)[] }[] = [];
    if (rule.name !== undefined) list.push({ name: rule.name, at: [...at, 'name'] });
    if (rule.names !== undefined) {
      if (!Array.isArray(rule.names)) problem([...at, 'names'], 'must be an array of syscall names');
      else rule.names.forEach((name, j) => list.push({ name, at: [...at, 'names', j] }));
    }
    if (rule.name === undefined && rule.names === undefined) problem(at, 'a rule needs "names": [...]');
    for (const { name, at: where } of list) {
      if (typeof name !== 'string') problem(where, `${shown(name)} is not a syscall name`);
      else if (syscallNumber(name) === undefined) {
        const near = SYSCALL_NAMES.find((n) => editDistance(n, name) <= Math.max(2, name.length / 4));
        problem(where, `unknown syscall "${excerpt(name)}": not an x86-64 syscall name${near ? ` (did you mean "${near}"?)` : ''}`);
      } else names.add(name);
    }
  });
  return names;
}

/** The launcher's argv before the workload's: `gadget-run-seccomp MODE NR,NR,…`. */
export function launcherArgv(plan: SeccompPlan): string[] {
  return [launcherPath(), plan.summary.mode, plan.numbers.join(',')];
}

/**
 * Why this kernel cannot apply the mode (no seccomp filters, the action
 * missing, or log records switched off so audit/seccomp would see nothing),
 * or undefined.
 */
export function seccompUnsupported(mode: SeccompMode): string | undefined {
  const read = (name: string) => {
    try {
      return fs.readFileSync(`/proc/sys/kernel/seccomp/${name}`, 'utf8').trim().split(/\s+/);
    } catch {
      return undefined;
    }
  };
  const avail = read('actions_avail');
  if (!avail) return 'this kernel has no seccomp filters (/proc/sys/kernel/seccomp/actions_avail is missing: CONFIG_SECCOMP_FILTER)';
  if (!avail.includes(mode)) return `this kernel's seccomp has no ${mode} action (actions_avail: ${avail.join(' ')})`;
  if (mode === 'log' && !read('actions_logged')?.includes('log')) {
    return 'kernel.seccomp.actions_logged does not include log: the syscalls log mode lets through would leave no record for audit/seccomp (sysctl -w kernel.seccomp.actions_logged="… log", or use mode: errno)';
  }
  if (!fs.existsSync(launcherPath())) return `the seccomp launcher ${launcherPath()} is missing: build it with make -C bpf (scripts/setup; it needs libseccomp-dev)`;
  return undefined;
}
