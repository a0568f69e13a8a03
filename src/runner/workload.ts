/**
 * The recipe's `run` command, in a fresh cgroup v2 so the gadgets can filter
 * on it in the kernel: the command and every process it starts (and any
 * nested cgroup below it) match, processes started elsewhere do not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import { cgroup2Mount } from '../containers/discovery.ts';

export { cgroup2Mount };

export interface WorkloadCgroup {
  path: string;
  /** cgroup v2 id = inode of the directory (what bpf_get_current_cgroup_id returns) */
  id: bigint;
  /** depth below the cgroup v2 root */
  level: number;
}

export function createWorkloadCgroup(name: string): WorkloadCgroup {
  const root = cgroup2Mount();
  const parent = path.join(root, 'gadget-run');
  let dir: string;
  try {
    fs.mkdirSync(parent, { recursive: true });
    dir = fs.mkdtempSync(path.join(parent, `${name.replace(/[^A-Za-z0-9_-]/g, '_')}-`));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? ' — run as root (the workload gets a cgroup of its own)' : '';
    throw new Error(`cannot create the workload's cgroup under ${parent}: ${(err as Error).message}${hint}`, { cause: err });
  }
  const id = fs.statSync(dir, { bigint: true }).ino;
  const level = path.relative(root, dir).split(path.sep).length;
  return { path: dir, id, level };
}

/** Kill what is left in the cgroup and remove it. */
export async function removeWorkloadCgroup(cg: WorkloadCgroup): Promise<void> {
  const procs = () => fs.readFileSync(path.join(cg.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (let attempt = 0; attempt < 50; attempt++) {
    let left: number[];
    try {
      left = procs();
    } catch {
      return; // already gone
    }
    if (!left.length) break;
    if (fs.existsSync(path.join(cg.path, 'cgroup.kill'))) fs.writeFileSync(path.join(cg.path, 'cgroup.kill'), '1');
    else for (const pid of left) try { process.kill(pid, 'SIGKILL'); } catch { /* exited */ }
    await sleep(20);
  }
  try {
    fs.rmdirSync(cg.path);
  } catch (err) {
    process.stderr.write(`gadget-run: could not remove cgroup ${cg.path}: ${(err as Error).message}\n`);
  }
}

export interface Workload {
  command: string;
  child: ChildProcess;
  /** exit code, 128+signal when killed by a signal */
  exited: Promise<number>;
}

/**
 * Start `command` with /bin/sh inside the cgroup: the shell moves itself into
 * the cgroup before exec'ing the command, so the command's first exec is seen.
 */
export function startWorkload(command: string, cg: WorkloadCgroup): Workload {
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$GADGET_RUN_CGROUP/cgroup.procs" && exec /bin/sh -c "$GADGET_RUN_COMMAND"'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, GADGET_RUN_CGROUP: cg.path, GADGET_RUN_COMMAND: command },
  });
  const exited = new Promise<number>((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`gadget-run: cannot start the workload: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
  return { command, child, exited };
}
