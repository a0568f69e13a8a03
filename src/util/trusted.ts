import fs from 'node:fs';
import path from 'node:path';

/**
 * A file or folder only root or we may have written: what our caches and a
 * btfgen folder must be before we read them (a BTF someone else wrote would
 * steer relocations; a probe record, what `gadgets` says).
 */
export function trusted(st: fs.Stats): boolean {
  const uid = process.getuid?.() ?? -1;
  return (st.uid === 0 || st.uid === uid) && (st.mode & 0o022) === 0;
}

/**
 * A regular file's bytes when it and its folder are trusted and it is at
 * most `max` bytes; else what is wrong (`untrusted`: someone else may have
 * written it; `unreadable`: missing, not a regular file, a read error).
 */
export function readTrusted(file: string, max: number): Buffer | { problem: 'untrusted' | 'unreadable' | 'too-large'; detail: string } {
  let fd: number;
  try {
    const dirSt = fs.lstatSync(path.dirname(file));
    if (!dirSt.isDirectory()) return { problem: 'unreadable', detail: 'its folder is not a folder' };
    if (!trusted(dirSt)) return { problem: 'untrusted', detail: 'others may write its folder' };
    // O_NOFOLLOW|O_NONBLOCK: never follow a link planted there, never block on a fifo
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    return { problem: 'unreadable', detail: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { problem: 'unreadable', detail: 'not a regular file' };
    if (!trusted(st)) return { problem: 'untrusted', detail: 'others may write it' };
    if (st.size > max) return { problem: 'too-large', detail: `${st.size} bytes, more than ${max}` };
    return fs.readFileSync(fd);
  } catch (err) {
    return { problem: 'unreadable', detail: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  } finally {
    fs.closeSync(fd);
  }
}
