import fs from 'node:fs';
import path from 'node:path';

/**
 * mkdir -p, one level at a time: Node's recursive mkdirSync reports ENOENT
 * on a read-only mount and never returns where mkdir(2) says ENOENT for a
 * folder that cannot exist (under /proc); one level at a time gives the real
 * errno. A folder another process made in between is not an error.
 */
export function mkdirs(dir: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
