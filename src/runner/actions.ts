/**
 * Actions: what a recipe runs after its verdict (`on_success`, `on_failure`, `on_cancel`,
 * `on_exit`) — an argv (never a shell string) or a zx script, one after another, as a
 * user who is not root (unless the command line said `--user root`), each bounded by a
 * timeout after which its whole process group is killed, its output captured and capped.
 * An action never changes the verdict: its end is recorded next to it (summary.json
 * `actions[]`, report.md).
 *
 * Which lists run follows CI systems (GitHub Actions' success(), failure(), cancelled(),
 * always()): a run that was interrupted is cancelled, not failed, so on_failure does not run
 * for it; on_cancel does, and on_exit always runs last.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { formatMs, parseDuration } from '../steps/duration.ts';
import { packageRoot } from '../util/package-root.ts';
import type { ActionSummary, RunStatus } from './summary.ts';
import { dropPrivileges, isRootUser, lookupUser, resolveCommand, type WorkloadUser } from './workload.ts';

export interface ActionSpec {
  name?: string;
  /** the command as an argv */
  run?: string[];
  /** a zx script, relative to the recipe's folder */
  script?: string;
  args?: string[];
  timeout?: number | string;
}

export const ACTION_HOOKS = ['on_success', 'on_failure', 'on_cancel', 'on_exit'] as const;
export type ActionHook = (typeof ACTION_HOOKS)[number];
export type RecipeActions = Partial<Record<ActionHook, ActionSpec[]>>;

export const DEFAULT_ACTION_TIMEOUT_MS = 60_000;
/** between SIGTERM to the action's process group and SIGKILL */
const KILL_GRACE_MS = 2_000;
/** after the action exited, how long its pipes may stay open (a child it left holds them) */
const DRAIN_MS = 1_000;
/** the most output kept in memory and in its log file: the last bytes */
export const MAX_OUTPUT_BYTES = 1024 * 1024;
/** the output's tail in summary.json */
export const TAIL_BYTES = 4096;
/** the folder inside --out with each action's output */
export const ACTIONS_DIR = 'actions';

/** The lists that run for a verdict, in order. */
export function hooksFor(status: RunStatus): ActionHook[] {
  const first: ActionHook | undefined = status === 'passed' ? 'on_success' : status === 'interrupted' ? 'on_cancel' : 'on_failure';
  return [first, 'on_exit'];
}

/** The recipe's problems with its actions that the schema cannot say: one of run or script, scripts that exist. */
export function checkActions(actions: RecipeActions, recipeDir: string, problem: (path: (string | number)[], message: string) => void): void {
  for (const hook of ACTION_HOOKS) {
    const list = actions[hook];
    if (!Array.isArray(list)) continue; // the schema's to report
    list.forEach((a, i) => {
      if (!a || typeof a !== 'object') return;
      if (a.run === undefined && a.script === undefined) problem([hook, i], 'an action needs run: [argv…] (a command, no shell) or script: file.mjs (a zx script)');
      if (a.run !== undefined && a.script !== undefined) problem([hook, i], 'an action is run: or script:, not both: make two actions');
      if (a.args !== undefined && a.script === undefined) problem([hook, i, 'args'], "args are a script's: put a command's arguments in its run list");
      if (typeof a.script === 'string') {
        const file = path.resolve(recipeDir, a.script);
        if (!fs.existsSync(file)) problem([hook, i, 'script'], `no script ${file}: a script is relative to the recipe's folder (${recipeDir})`);
      }
    });
  }
}

export interface ActionContext {
  /** the output folder; its summary.json and report.md are already written */
  outDir: string;
  /** scripts are relative to it */
  recipeDir: string;
  recipe: string;
  status: RunStatus;
  exitCode: number;
  /** who runs the actions, or why nobody may */
  user: WorkloadUser | { refused: string };
  log: (line: string) => void;
}

/** Every action the verdict calls for, one after another; their ends, for summary.json. */
export async function runActions(actions: RecipeActions, ctx: ActionContext): Promise<ActionSummary[]> {
  const done: ActionSummary[] = [];
  for (const hook of hooksFor(ctx.status)) {
    for (const [i, spec] of (actions[hook] ?? []).entries()) {
      const name = spec.name ?? `${hook}-${i + 1}`;
      done.push(await runAction(hook, name, spec, ctx));
    }
  }
  return done;
}

/** The environment an action gets on top of the user's: where the run's files are and its verdict. */
export function actionEnv(ctx: ActionContext, hook: ActionHook, name: string): Record<string, string> {
  const out = path.resolve(ctx.outDir);
  return {
    GADGET_RUN_OUT: out,
    GADGET_RUN_SUMMARY: path.join(out, 'summary.json'),
    GADGET_RUN_REPORT: path.join(out, 'report.md'),
    GADGET_RUN_HTML: path.join(out, 'report.html'),
    GADGET_RUN_STATUS: ctx.status,
    GADGET_RUN_EXIT_CODE: String(ctx.exitCode),
    GADGET_RUN_RECIPE: ctx.recipe,
    GADGET_RUN_HOOK: hook,
    GADGET_RUN_ACTION: name,
  };
}

async function runAction(hook: ActionHook, name: string, spec: ActionSpec, ctx: ActionContext): Promise<ActionSummary> {
  const timeoutMs = spec.timeout === undefined ? DEFAULT_ACTION_TIMEOUT_MS : parseDuration(spec.timeout);
  const command = spec.run ?? [spec.script!, ...(spec.args ?? [])];
  const base = { hook, name, ...(spec.run ? { command } : { script: spec.script!, ...(spec.args?.length ? { args: spec.args } : {}) }), timeoutMs };
  if ('refused' in ctx.user) {
    ctx.log(`action ${name}: not run: ${ctx.user.refused}`);
    return { ...base, status: 'not_run', exitCode: null, durationMs: 0, reason: ctx.user.refused };
  }
  const user = ctx.user;
  const argv = spec.run ? [resolveCommand(spec.run[0]), ...spec.run.slice(1)] : [process.execPath, zxCli(), path.resolve(ctx.recipeDir, spec.script!), ...(spec.args ?? [])];
  if (spec.script) {
    // a zx script runs as the user with gadget-run's own zx: both must be readable by that user
    // (a checkout in a private folder, mode 0700, is not), or the action would die on a module error
    for (const file of argv.slice(1, 3)) {
      const probe = await spawnBounded(['test', '-r', file], user, {}, 10_000, ctx.outDir);
      if (probe.exitCode === 0) continue;
      const reason = `${user.name} cannot read ${file} (a folder on its path is closed to it, e.g. a checkout in a private folder): give gadget-run and the script a place ${user.name} can read, or --user another user`;
      ctx.log(`action ${name}: not run: ${reason}`);
      return { ...base, status: 'not_run', exitCode: null, durationMs: 0, reason };
    }
  }
  ctx.log(`action ${name} (${hook}): ${command.join(' ')} (as ${user.name}, timeout ${formatMs(timeoutMs)})`);
  const started = performance.now();
  const ran = await spawnBounded(argv, user, { ...actionEnv(ctx, hook, name) }, timeoutMs, ctx.outDir);
  const durationMs = Math.round(performance.now() - started);
  let log: string | undefined;
  try {
    const dir = path.join(ctx.outDir, ACTIONS_DIR);
    fs.mkdirSync(dir, { recursive: true });
    log = path.join(ACTIONS_DIR, `${name}.log`);
    fs.writeFileSync(path.join(ctx.outDir, log), ran.output);
  } catch (err) {
    ctx.log(`action ${name}: could not write its output: ${(err as Error).message}`);
    log = undefined;
  }
  const status: ActionSummary['status'] = ran.startError ? 'error' : ran.timedOut ? 'timed_out' : ran.exitCode === 0 ? 'ok' : 'failed';
  const reason = ran.startError
    ? `could not start: ${ran.startError}`
    : ran.timedOut
      ? `timed out after ${formatMs(timeoutMs)}: its process group was killed${ran.forced ? ' (SIGKILL: it outlived SIGTERM)' : ''}`
      : ran.exitCode !== 0
        ? `exited with ${ran.exitCode}${ran.signal ? ` (${ran.signal})` : ''}`
        : undefined;
  ctx.log(`action ${name}: ${status}${reason ? ` (${reason})` : ''}, took ${formatMs(durationMs)}`);
  return {
    ...base,
    user: { name: user.name, uid: user.uid, gid: user.gid },
    status,
    exitCode: ran.exitCode,
    ...(ran.signal ? { signal: ran.signal } : {}),
    durationMs,
    ...(reason ? { reason } : {}),
    output_bytes: ran.outputBytes,
    output_tail: tailOf(ran.output),
    ...(log ? { log } : {}),
  };
}

/** The last TAIL_BYTES of the output, cut at a line start when one is near, as text. */
function tailOf(output: Buffer): string {
  if (output.length <= TAIL_BYTES) return output.toString('utf8');
  let tail = output.subarray(output.length - TAIL_BYTES);
  const nl = tail.indexOf(10);
  if (nl !== -1 && nl < 256) tail = tail.subarray(nl + 1);
  return tail.toString('utf8').replace(/^\uFFFD+/, '');
}

/** zx's command-line entry in gadget-run's own node_modules: scripts run with the zx it was tested with. */
function zxCli(): string {
  const require = createRequire(path.join(packageRoot(), 'package.json'));
  const pkg = require.resolve('zx/package.json');
  const bin = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { bin: Record<string, string> }).bin.zx;
  return path.join(path.dirname(pkg), bin);
}

interface Ran {
  exitCode: number | null;
  signal?: string;
  timedOut: boolean;
  /** SIGTERM was not enough */
  forced: boolean;
  startError?: string;
  output: Buffer;
  outputBytes: number;
}

/** The process groups of actions running now: a process that must die at once kills them first (killRunningActions). */
const running = new Set<number>();

/** SIGKILL every action's process group, synchronously (a second Ctrl-C, a crash). */
export function killRunningActions(): void {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * Run argv as `user` in a process group of its own, stdin closed, stdout and stderr
 * together into a buffer that keeps the last MAX_OUTPUT_BYTES; at the timeout, SIGTERM the
 * group, SIGKILL it KILL_GRACE_MS later.
 */
function spawnBounded(argv: string[], user: WorkloadUser, env: Record<string, string>, timeoutMs: number, cwd: string): Promise<Ran> {
  const drop = dropPrivileges(user);
  const [cmd, ...args] = [...drop, ...argv];
  const me = process.getuid?.() ?? 0;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let outputBytes = 0;
    const keep = (d: Buffer) => {
      outputBytes += d.length;
      chunks.push(d);
      kept += d.length;
      while (kept - chunks[0].length >= MAX_OUTPUT_BYTES) kept -= chunks.shift()!.length;
    };
    const child = spawn(cmd, args, {
      cwd: path.resolve(cwd),
      detached: true, // its own process group (setsid): the timeout kills it and whatever it started
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...(user.uid === me ? process.env : { ...process.env, HOME: user.home ?? '/', USER: user.name, LOGNAME: user.name }), ...env },
    });
    const pgid = child.pid;
    if (pgid !== undefined) running.add(pgid);
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let timedOut = false;
    let forced = false;
    const group = (sig: NodeJS.Signals) => {
      try {
        if (pgid !== undefined) process.kill(-pgid, sig);
      } catch {
        // the group is gone
      }
    };
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      group('SIGTERM');
      killTimer = setTimeout(() => {
        forced = true;
        group('SIGKILL');
      }, KILL_GRACE_MS);
    }, timeoutMs);
    let settled = false;
    const finish = (exitCode: number | null, signal: string | null, startError?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      // what it left running in its group goes with it: an action does not outlive its record
      group('SIGKILL');
      if (pgid !== undefined) running.delete(pgid);
      const output = Buffer.concat(chunks);
      const trimmed = output.length > MAX_OUTPUT_BYTES ? output.subarray(output.length - MAX_OUTPUT_BYTES) : output;
      resolve({ exitCode, ...(signal ? { signal } : {}), timedOut, forced, ...(startError ? { startError } : {}), output: trimmed, outputBytes });
    };
    child.on('error', (err) => finish(null, null, err.message));
    child.on('exit', (code, signal) => {
      // its pipes close when the last holder exits; one that escaped the group may hold them for ever
      const drained = setTimeout(() => finish(code, signal), DRAIN_MS);
      child.on('close', () => {
        clearTimeout(drained);
        finish(code, signal);
      });
    });
  });
}

/**
 * Who runs the actions: `--user` from the command line (the only way to say root), else
 * whoever ran sudo, else this process's user when it is not root, else the owner of the
 * recipe file, else the owner of the current folder. When all of them are root, the
 * actions do not run, and say why.
 */
export function actionUser(commandLine: WorkloadUser | undefined, invoking: WorkloadUser, recipeFile: string | undefined, cwd = process.cwd()): WorkloadUser | { refused: string } {
  if (commandLine) return commandLine;
  if (invoking.uid !== 0) return invoking;
  for (const p of [recipeFile, cwd]) {
    if (p === undefined) continue;
    let uid: number;
    try {
      uid = fs.statSync(p).uid;
    } catch {
      continue;
    }
    if (uid === 0 || isRootUser(uid)) continue;
    const known = lookupUser(uid);
    return known ?? { name: String(uid), uid, gid: uid };
  }
  return { refused: 'actions never run as root unless the command line says --user root; run gadget-run through sudo (the actions run as you) or pass --user NAME' };
}


/** The folder a recipe's scripts are relative to: its own, or the current one for a recipe from stdin or an object. */
export function recipeDirOf(file: string): string {
  return fs.existsSync(file) && fs.statSync(file).isFile() ? path.dirname(path.resolve(file)) : process.cwd();
}
