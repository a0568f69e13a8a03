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

/** Wait for `file` and take it; resolves with its release. `log` hears once that it waits, and for whom. */
export async function lockFile(file, what, log) {
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      const release = () => fs.rmSync(file, { force: true });
      process.once('exit', release);
      return () => {
        process.off('exit', release);
        release();
      };
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let owner = 0;
    try {
      owner = Number(fs.readFileSync(file, 'utf8').trim());
    } catch {
      continue; // released between the two calls
    }
    if (!owner || !alive(owner)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (!told) log(`${what}: waiting for pid ${owner} to finish (${file})`);
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
