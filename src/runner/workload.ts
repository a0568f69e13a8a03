/**
 * The recipe's `run` command, in a fresh cgroup v2 so the gadgets can filter
 * on it in the kernel: the command and every process it starts (and any
 * nested cgroup below it) match, processes started elsewhere do not.
 *
 * The cgroup is also how the workload ends: every process in it is signalled
 * (not only the shell), `cgroup.kill` ends what ignores SIGTERM, and a run is
 * over only once the cgroup is empty. Its name carries this process's pid and
 * start time (ownership.ts), so a later run removes what a SIGKILLed one left.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroup2Mount } from '../containers/discovery.ts';
import { ownedName, sweepStale } from './ownership.ts';

export { cgroup2Mount };

export interface WorkloadCgroup {
  path: string;
  /** cgroup v2 id = inode of the directory (what bpf_get_current_cgroup_id returns) */
  id: bigint;
  /** depth below the cgroup v2 root */
  level: number;
}

/** How often to look at cgroup.events when no inotify event came (belt and braces). */
const POLL_MS = 50;
/** How long a SIGKILLed cgroup may take to empty before we give up on removing it. */
const KILL_WAIT_MS = 5000;

/** Where every run's workload cgroup lives: `<cgroup2 mount>/gadget-run/`. */
export function cgroupParent(): string {
  return path.join(cgroup2Mount(), 'gadget-run');
}

export function createWorkloadCgroup(name: string): WorkloadCgroup {
  const root = cgroup2Mount();
  const parent = cgroupParent();
  let dir: string;
  try {
    fs.mkdirSync(parent, { recursive: true });
    dir = fs.mkdtempSync(path.join(parent, ownedName(name.replace(/[^A-Za-z0-9._-]/g, '_'))));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? ' — run as root (the workload gets a cgroup of its own)' : '';
    throw new Error(`cannot create the workload's cgroup under ${parent}: ${(err as Error).message}${hint}`, { cause: err });
  }
  const id = fs.statSync(dir, { bigint: true }).ino;
  const level = path.relative(root, dir).split(path.sep).length;
  return { path: dir, id, level };
}

/** Kill and remove the workload cgroups of runs that are gone (SIGKILLed, crashed); never a live run's. */
export async function sweepStaleCgroups(log: (line: string) => void): Promise<void> {
  let parent: string;
  try {
    parent = cgroupParent();
  } catch {
    return; // no cgroup v2: nothing can be stale
  }
  try {
    for (const p of await sweepStale(parent, undefined, destroyCgroup)) log(`removed the workload cgroup of a run that is gone: ${p}`);
  } catch (err) {
    log(`could not clean up stale workload cgroups in ${parent}: ${(err as Error).message}`);
  }
}

/** The cgroup and the cgroups nested in it, deepest first (the order rmdir needs). */
function cgroupTree(dir: string): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out; // gone already
  }
  for (const e of entries) if (e.isDirectory()) out.push(...cgroupTree(path.join(dir, e.name)));
  out.push(dir);
  return out;
}

/** Every process in the cgroup or below it. */
export function cgroupPids(dir: string): number[] {
  const pids: number[] = [];
  for (const d of cgroupTree(dir)) {
    try {
      pids.push(...fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
    } catch {
      // removed while we looked
    }
  }
  return pids;
}

/** Whether any process is left in the cgroup or below it (cgroup.events: populated 1); a cgroup that is gone is empty. */
export function isPopulated(dir: string): boolean {
  try {
    return /^populated 1$/m.test(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8'));
  } catch {
    return false;
  }
}

/** Resolves true once the cgroup is empty, false when `timeoutMs` passes first. */
export async function waitEmpty(dir: string, timeoutMs: number): Promise<boolean> {
  if (!isPopulated(dir)) return true;
  const deadline = Date.now() + timeoutMs;
  const ac = new AbortController();
  let wake: () => void = () => {};
  try {
    // the kernel notifies a change of cgroup.events through inotify; the poll covers a missed one
    fs.watch(path.join(dir, 'cgroup.events'), { signal: ac.signal, persistent: false }, () => wake()).on('error', () => {});
  } catch {
    // watching is an optimisation only
  }
  try {
    while (isPopulated(dir)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(POLL_MS, left));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return true;
  } finally {
    ac.abort();
  }
}

/** Send `signal` to every process in the cgroup. */
export function signalCgroup(dir: string, signal: NodeJS.Signals): void {
  // A listed process may fork before its signal arrives: the child is in the cgroup but not in
  // the list read, and would never be signalled (a shell's `sleep`, left to the SIGKILL after the
  // grace period). List again until a pass finds no one new: a signalled process forks no more
  // (fork restarts while a signal is pending), unless it handles the signal by forking — bounded.
  const sent = new Set<number>();
  for (let pass = 0; pass < 16; pass++) {
    const fresh = cgroupPids(dir).filter((pid) => !sent.has(pid));
    if (fresh.length === 0) return;
    for (const pid of fresh) {
      sent.add(pid);
      try {
        process.kill(pid, signal);
      } catch {
        // exited meanwhile
      }
    }
  }
}

/**
 * SIGKILL everything in the cgroup, at once and synchronously (safe in a
 * signal or crash handler): `cgroup.kill` (Linux 5.14+) kills the whole tree
 * without racing forks; without it, SIGKILL each process listed.
 */
export function killCgroupSync(dir: string): void {
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(dir)) return; // gone already
  }
  signalCgroup(dir, 'SIGKILL');
}

/** rmdir the cgroup and what is nested in it; throws when one cannot go (still populated). */
function rmdirTree(dir: string): void {
  for (const d of cgroupTree(dir)) {
    try {
      fs.rmdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Kill what is left in the cgroup, wait for it to empty, and remove it. */
export async function destroyCgroup(dir: string): Promise<void> {
  killCgroupSync(dir);
  if (!(await waitEmpty(dir, KILL_WAIT_MS))) throw new Error(`cgroup ${dir}: processes ${cgroupPids(dir).join(' ')} still there ${KILL_WAIT_MS} ms after SIGKILL`);
  rmdirTree(dir);
}

/**
 * destroyCgroup for the ways out that cannot wait on the event loop (a second
 * signal, a crash): kill, sleep-wait up to `waitMs` for the cgroup to empty,
 * remove it. Returns whether it is gone.
 */
export function destroyCgroupSync(dir: string, waitMs: number): boolean {
  killCgroupSync(dir);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + waitMs;
  while (isPopulated(dir) && Date.now() < deadline) Atomics.wait(nap, 0, 0, 10);
  try {
    rmdirTree(dir);
    return true;
  } catch {
    return false;
  }
}

/** Who the workload runs as. */
export interface WorkloadUser {
  name: string;
  uid: number;
  gid: number;
  /** from passwd; undefined for a uid passwd does not know */
  home?: string;
}

/** A user the workload cannot run as (unknown here, or root named by a recipe). */
export class WorkloadUserError extends Error {}

/** A user by name or uid, from passwd through NSS (getent), or undefined when there is none. */
export function lookupUser(spec: string | number): WorkloadUser | undefined {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', String(spec)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
  } catch {
    return undefined; // getent exits 2 for a user it does not know
  }
  const [name, , uid, gid, , home] = line.split(':');
  return { name, uid: Number(uid), gid: Number(gid), home };
}

/** `user` (a name or uid) as a WorkloadUser; an unknown one throws WorkloadUserError naming it. */
export function resolveUser(spec: string | number): WorkloadUser {
  const user = lookupUser(spec);
  if (!user) throw new WorkloadUserError(`no user "${spec}" on this machine (getent passwd ${spec} finds none)`);
  return user;
}

/** root by name or uid, or a name that is uid 0 on this machine (toor). */
export function isRootUser(spec: string | number): boolean {
  return String(spec) === 'root' || String(spec) === '0' || lookupUser(spec)?.uid === 0;
}

/**
 * Who the workload runs as: `--user` from the command line (the only way to
 * say root), else the recipe's `user` (never root), else whoever started
 * gadget-run. Throws WorkloadUserError for a user this machine does not know.
 */
export function chooseUser(commandLine: string | undefined, recipe: string | number | undefined): WorkloadUser {
  if (commandLine !== undefined) return resolveUser(/^\d+$/.test(commandLine) ? Number(commandLine) : commandLine);
  if (recipe === undefined) return invokingUser();
  const user = resolveUser(recipe);
  if (user.uid === 0) throw new WorkloadUserError(`the recipe's user "${recipe}" is root: a recipe may not run its workload as root (pass --user root on the command line)`);
  return user;
}

/**
 * Who runs gadget-run: under sudo, the user who ran sudo (SUDO_UID/SUDO_GID),
 * so a workload never has more privilege than whoever started us; else us.
 */
export function invokingUser(env: NodeJS.ProcessEnv = process.env): WorkloadUser {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0 && env.SUDO_UID && /^\d+$/.test(env.SUDO_UID)) {
    const sudoUid = Number(env.SUDO_UID);
    const known = lookupUser(sudoUid);
    const gid = env.SUDO_GID && /^\d+$/.test(env.SUDO_GID) ? Number(env.SUDO_GID) : (known?.gid ?? sudoUid);
    return { name: known?.name ?? String(sudoUid), uid: sudoUid, gid, home: known?.home };
  }
  const me = os.userInfo();
  return { name: me.username, uid: me.uid, gid: me.gid, home: me.homedir };
}

export interface StopResult {
  /** the cgroup did not empty within the grace period and was killed */
  forced: boolean;
}

/**
 * `make` → `/usr/bin/make`, found in PATH here: the shell's own search would
 * exec (and the trace show) a failing execve per PATH entry before the right one.
 */
export function resolveCommand(name: string): string {
  if (name.includes('/')) return name;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const candidate = path.join(dir || '.', name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return name; // the shell says "not found" and exits 127
}

/**
 * The argv prefix that runs what follows as `user` (setpriv: its uid, gid and supplementary
 * groups, no inheritable capabilities); none when we are that user already.
 */
export function dropPrivileges(user: WorkloadUser): string[] {
  const me = process.getuid?.() ?? 0;
  if (user.uid === me && user.gid === (process.getgid?.() ?? 0)) return [];
  // initgroups needs the user in passwd; a uid it does not know gets no supplementary groups
  return ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), user.home === undefined ? '--clear-groups' : '--init-groups', '--inh-caps=-all', '--'];
}

export interface Workload {
  command: string | readonly string[];
  user: WorkloadUser;
  cgroup: WorkloadCgroup;
  child: ChildProcess;
  /** the shell's exit code, 128+signal when killed by a signal */
  exited: Promise<number>;
  /** SIGTERM every process in the cgroup, SIGKILL the rest after `graceMs`; resolves once the cgroup is empty */
  stop(graceMs: number): Promise<StopResult>;
  /** SIGKILL it all now, synchronously (the ways out that cannot wait) */
  kill(): void;
}

/**
 * Start `command` with /bin/sh inside the cgroup: the shell moves itself into
 * the cgroup (as root) before exec'ing the command, so the command's first
 * exec is seen; when the workload runs as another user, setpriv drops to that
 * user with its supplementary groups (initgroups) between the two. A
 * `launcher` (the seccomp one: its argv up to the command) runs after the
 * drop, as the user, and execs the command.
 */
export function startWorkload(command: string | readonly string[], cg: WorkloadCgroup, user: WorkloadUser, env: Record<string, string> = {}, launcher: readonly string[] = []): Workload {
  const me = process.getuid?.() ?? 0;
  const drop = dropPrivileges(user);
  // a script runs through `sh -c`; an argv (`-- CMD…` on the command line) is exec'd as it is, never through a shell string
  const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : [resolveCommand(command[0]), ...command.slice(1)];
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'gadget-run-join', cg.path, ...drop, ...launcher, ...argv], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // env: the recipe's inputs its run script references (GADGET_RUN_INPUT_*)
    env: { ...(user.uid === me ? process.env : { ...process.env, HOME: user.home ?? '/', USER: user.name, LOGNAME: user.name }), ...env },
  });
  const exited = new Promise<number>((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`gadget-run: cannot start the workload: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
  let gone = false;
  void exited.then(() => (gone = true));
  // Until its first command has moved it into the cgroup, the workload is only `child`:
  // signal both, and wait for both (the shell's exit, then an empty cgroup).
  const signal = (sig: NodeJS.Signals) => {
    if (!gone) child.kill(sig);
    signalCgroup(cg.path, sig);
  };
  const ended = async (ms: number) => {
    const deadline = Date.now() + ms;
    let timer: NodeJS.Timeout | undefined;
    const exitedInTime = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
    clearTimeout(timer);
    return exitedInTime && (await waitEmpty(cg.path, Math.max(0, deadline - Date.now())));
  };
  let stopping: Promise<StopResult> | undefined;
  const stop = (graceMs: number) =>
    (stopping ??= (async () => {
      signal('SIGTERM');
      if (await ended(graceMs)) return { forced: false };
      kill();
      await ended(KILL_WAIT_MS);
      return { forced: true };
    })());
  const kill = () => {
    if (!gone) child.kill('SIGKILL');
    killCgroupSync(cg.path);
  };
  return { command, user, cgroup: cg, child, exited, stop, kill };
}
