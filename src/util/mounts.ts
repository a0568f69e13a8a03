/**
 * Where the liveness canary may write (src/gadgets/trace/fsslower.ts, top/block-io.ts):
 * the node's scratch folders only, never a folder of the user's, judged from
 * /proc/self/mountinfo (the mount a folder is on, its type, its device, rw).
 */
import fs from 'node:fs';
import path from 'node:path';

/** The scratch folders the canary may make (and at once unlink) a file in, in preference order. */
export const SCRATCH_DIRS = ['/var/tmp', '/tmp', '/dev/shm'] as const;

interface Mount {
  point: string;
  /** major:minor of the file system's device (0:N for one with no block device: tmpfs, overlay) */
  dev: string;
  type: string;
  rw: boolean;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 6) continue;
    out.push({ point: unescape(f[4]), dev: f[2], type: f[sep + 1], rw: f[5].split(',').includes('rw') });
  }
  return out;
}

/** The mount a folder is on: the last mounted at the longest prefix of its real path. */
function mountOf(dir: string, all: Mount[]): Mount | undefined {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return undefined;
  }
  let best: Mount | undefined;
  for (const m of all) {
    const inside = m.point === '/' || real === m.point || real.startsWith(m.point + path.sep);
    if (inside && (!best || m.point.length >= best.point.length)) best = m;
  }
  return best;
}

function writable(dir: string, m: Mount | undefined): m is Mount {
  if (!m?.rw) return false;
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** A scratch folder on a file system of this type, or undefined. */
export function scratchDirOn(type: string): string | undefined {
  const all = mounts();
  return SCRATCH_DIRS.find((d) => {
    const m = mountOf(d, all);
    return writable(d, m) && m.type === type;
  });
}

/** A scratch folder whose file system is on a block device (the kernel lists it in /sys/dev/block), or undefined. */
export function scratchDirOnDisk(): string | undefined {
  const all = mounts();
  return SCRATCH_DIRS.find((d) => {
    const m = mountOf(d, all);
    return writable(d, m) && !m.dev.startsWith('0:') && fs.existsSync(`/sys/dev/block/${m.dev}`);
  });
}
