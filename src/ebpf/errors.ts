import { describeErrno, errnoName } from './errno.ts';
import { unsupportedMessage, type Reason } from './reasons.ts';

export { describeErrno, errnoName };

/** An error from the kernel or libbpf, naming the operation, the errno and the way out. */
export class KernelError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(
    readonly operation: string,
    errno: number,
    readonly hint?: string,
    options?: ErrorOptions & { load?: LoadFailure },
  ) {
    const code = errnoName(errno);
    const load = options?.load;
    const tail = load ? `\n    ${load.tail.join('\n    ')}` : '';
    super(`${operation}: ${code} (${describeErrno(errno)})${hint ? ` — ${hint}` : ''}${tail}`, options);
    this.name = 'KernelError';
    this.errno = errno;
    this.code = code;
    this.load = load;
  }
  /** for a failed object load: what libbpf said, as data (load-probe.ts keeps it as the gadget's reason) */
  readonly load?: LoadFailure;
}

/** What libbpf said when an object failed to load (log.ts loadFailureOf reads it from libbpf's log). */
export interface LoadFailure {
  /** the program that failed, when libbpf names one */
  program?: string;
  /** the verifier refused it (its log is in the file), rather than libbpf before loading */
  verifier: boolean;
  /** the lines that say why: the verifier's complaint, or libbpf's warnings */
  detail: string[];
  /** the last lines of the log */
  tail: string[];
  /** where the whole log was written */
  logFile?: string;
}

/** A gadget that cannot run on this kernel; the runner reports `unsupported`. */
export class UnsupportedError extends Error {
  constructor(
    readonly gadget: string,
    readonly reason: Reason,
    options?: ErrorOptions,
  ) {
    super(unsupportedMessage(gadget, reason), options);
    this.name = 'UnsupportedError';
  }
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
