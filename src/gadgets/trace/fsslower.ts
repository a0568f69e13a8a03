import { errnoFields, field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import type { GadgetDefinition, Liveness } from '../../steps/types.ts';
import { SCRATCH_DIRS, scratchDirOn } from '../../util/mounts.ts';

/** Inspektor Gadget's fsslower default: slower than 10 ms. */
const DEFAULT_MIN_MS = 10;

/** A slower canary write would hold the workload back longer than a canary may. */
const CANARY_MAX_MS = 250;

/**
 * The canary's write waits in the kernel for min_ms and a little more, whatever the disk (its
 * source page arrives late: bpf/canary/canary.c do_slow), to a memfd (tmpfs), or for another
 * params.fs to a file in a scratch folder on that file system type.
 */
function fsslowerLiveness(params: Record<string, unknown>): Liveness {
  const minMs = typeof params.min_ms === 'number' ? params.min_ms : DEFAULT_MIN_MS;
  if (minMs > CANARY_MAX_MS) return { unproven: `params.min_ms is ${minMs}: a canary write that slow would hold the workload back (the canary proves min_ms up to ${CANARY_MAX_MS})` };
  const ms = Math.ceil(minMs) + 2;
  const fsType = typeof params.fs === 'string' ? params.fs : '';
  if (!fsType || fsType === 'tmpfs') return { canary: [`slow=${ms}`] };
  const dir = scratchDirOn(fsType);
  if (!dir) return { unproven: `params.fs is ${fsType}, and none of the canary's scratch folders (${SCRATCH_DIRS.join(', ')}) is on ${fsType} here` };
  return { canary: [`slow=${ms},${dir}`] };
}

export const traceFsslower = {
  id: 'trace/fsslower',
  description:
    'Trace reads, writes, opens and fsyncs of regular files slower than min_ms (default 10; 0 shows all), ' +
    'optionally on one file system type (fs). From syscall tracepoints (read, write, pread64, pwrite64, openat, ' +
    'fsync, fdatasync; Linux 5.8+ with BTF): the latency is the whole syscall, page-cache hits included',
  mode: 'stream',
  liveness: fsslowerLiveness,
  object: 'trace_fsslower.bpf.o',
  struct: 'fsslower_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.uid, field.gid, field.comm,
    { name: 'op', type: 'string', description: 'R (read, pread64), W (write, pwrite64), O (openat) or F (fsync, fdatasync)' },
    { name: 'bytes', type: 'number', description: 'bytes read or written (the return value); 0 for O and F' },
    { name: 'offset', type: 'number', description: 'file position the read or write started at; 0 for O and F' },
    { name: 'latency_ns', type: 'number', description: 'syscall entry to exit, ns' },
    { name: 'latency_us', type: 'number', decode: 'derive', derive: { from: ['latency_ns'], fn: (ns: number) => Math.floor(ns / 1000) }, description: 'latency_ns in whole µs' },
    { name: 'file', type: 'string', description: "the file's name (its last path component, 255 bytes at most); for O the path as passed to openat" },
    { name: 'fs', type: 'string', description: 'file system type (ext4, tmpfs, ...)' },
    { name: 'ret', type: 'number', description: "the syscall's return: bytes, the fd, 0, or the negative errno" },
    ...errnoFields(),
    field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [
    ...['read', 'write', 'pread64', 'pwrite64', 'openat', 'fsync', 'fdatasync'].flatMap((sc) => [
      { tracepoint: `syscalls/sys_enter_${sc}` },
      { tracepoint: `syscalls/sys_exit_${sc}` },
    ]),
  ],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      min_ms: { type: 'number', minimum: 0, default: DEFAULT_MIN_MS, description: 'report operations slower than this many ms (0: all), checked in the kernel' },
      fs: { type: 'string', maxLength: 15, pattern: '^[A-Za-z0-9_.-]*$', description: 'only files on this file system type (as in /proc/mounts: ext4, tmpfs, xfs, ...), checked in the kernel' },
    },
  },
  constants: (params) => ({
    min_ns: BigInt(Math.round(((params.min_ms as number | undefined) ?? DEFAULT_MIN_MS) * 1e6)),
    targ_fs: (params.fs as string | undefined) ?? '',
  }),
} satisfies GadgetDefinition;
