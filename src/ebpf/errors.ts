import os from 'node:os';

/** An error from the kernel or libbpf, naming the operation, the errno and the way out. */
export class KernelError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(operation: string, errno: number, hint?: string, options?: ErrorOptions) {
    const code = errnoName(errno);
    super(`${operation}: ${code} (${describeErrno(errno)})${hint ? ` — ${hint}` : ''}`, options);
    this.name = 'KernelError';
    this.errno = errno;
    this.code = code;
  }
}

/** A gadget that cannot run on this kernel; the runner reports `unsupported`. */
export class UnsupportedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UnsupportedError';
  }
}

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

function describeErrno(errno: number): string {
  return descriptions[errnoName(errno)] ?? 'system error';
}

/** The usual way out for an errno returned by a BPF operation. */
export function hintFor(errno: number): string | undefined {
  switch (errnoName(errno)) {
    case 'EPERM':
    case 'EACCES':
      return 'run as root or with CAP_BPF+CAP_PERFMON (and CAP_SYS_ADMIN for iterators)';
    case 'ENOENT':
      return 'the kernel lacks this hook or tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)';
    case 'E2BIG':
    case 'ENOMEM':
      return 'raise RLIMIT_MEMLOCK or use a smaller buffer';
    default:
      return undefined;
  }
}
