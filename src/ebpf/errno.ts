/** Errno numbers as names and short descriptions: the lowest floor of src/ebpf (errors.ts and reasons.ts both word errnos). */
import os from 'node:os';

const names = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, value]) => [value, name]),
);

export function errnoName(errno: number): string {
  return names.get(Math.abs(errno)) ?? `errno ${errno}`;
}

const descriptions: Record<string, string> = {
  EPERM: 'operation not permitted',
  EACCES: 'permission denied',
  ENOENT: 'no such file or directory',
  EINVAL: 'invalid argument',
  ENOMEM: 'out of memory',
  E2BIG: 'argument list too long',
  EBUSY: 'device or resource busy',
  ENOTSUP: 'not supported',
  EOPNOTSUPP: 'not supported',
  ESRCH: 'no such process',
  EEXIST: 'already exists',
  EBADF: 'bad file descriptor',
  EFAULT: 'bad address',
  ENOSPC: 'no space left',
};

export function describeErrno(errno: number): string {
  return descriptions[errnoName(errno)] ?? 'system error';
}
