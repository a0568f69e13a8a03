// A machine-wide lock held by a live process: a file in /run holding the
// holder's pid, created exclusively; a file whose process is gone is taken
// over. Scripts whose work must not run twice at once (one qemu guest at a
// time; one Kubernetes build or start: two would overwrite each other's
// binaries and state) take it, and release it when done or when they die.
import fs from 'node:fs';

export const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

const readOrNull = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};

/**
 * Waits for `file` and takes it. Resolves with `unlock()` (idempotent; also run when this
 * process exits) and `waitedMs`, how long another holder kept it. `log` hears once that it
 * waits, and for whom; after `maxWaitMs` of waiting it rejects, naming the holder.
 */
export async function lock(file, { what = file, log = () => {}, maxWaitMs = Infinity } = {}) {
  const t0 = Date.now();
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      let held = true;
      const release = () => {
        // only our own: a file another process took over after us is theirs
        if (held && Number(readOrNull(file)?.trim()) === process.pid) fs.rmSync(file, { force: true });
        held = false;
      };
      process.once('exit', release);
      return {
        unlock: () => {
          process.off('exit', release);
          release();
        },
        waitedMs: Date.now() - t0,
      };
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    const owner = Number(readOrNull(file)?.trim());
    if (readOrNull(file) === null) continue; // released between the two calls
    if (!owner || !alive(owner)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (Date.now() - t0 > maxWaitMs) {
      const cmd = readOrNull(`/proc/${owner}/cmdline`)?.split('\0').join(' ').trim() || '?';
      throw new Error(`${what}: pid ${owner} (${cmd}) still held ${file} after ${Math.round(maxWaitMs / 1000)} s`);
    }
    if (!told) log(`${what}: waiting for pid ${owner} to finish (${file})`);
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** lock() without a bound, resolving with its unlock alone (scripts/k8s-cluster.mjs). */
export async function lockFile(file, what, log) {
  return (await lock(file, { what, log })).unlock;
}
