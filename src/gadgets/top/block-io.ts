import { field, kernelFiltersExcept, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { intervalFields } from '../../steps/modes/interval.ts';
import { BLOCK_OPS, devMajor, devMinor } from '../profile/block-io/histogram.ts';
import { longestName } from '../../steps/names/index.ts';
import type { FieldSpec, GadgetDefinition, Liveness } from '../../steps/types.ts';
import { SCRATCH_DIRS, scratchDirOnDisk } from '../../util/mounts.ts';

const REQ_OP_WRITE = 1;
const opName = (op: number) => BLOCK_OPS[op] ?? `op${op}`;
const OP_NAME_BYTES = 2 + Math.max(longestName(BLOCK_OPS), 5);

/** The canary submits one 4 KiB direct write to the disk under a scratch folder (bpf/canary/canary.c do_disk). */
function blockioLiveness(): Liveness {
  const dir = scratchDirOnDisk();
  if (!dir) return { unproven: `no block device the canary can reach: none of its scratch folders (${SCRATCH_DIRS.join(', ')}) is on a disk here` };
  return { canary: [`disk=${dir}`] };
}

export const topBlockio = {
  id: 'top/block-io',
  description:
    'Block I/O per submitting process, disk and operation (IG top block-io): bytes, I/Os and time from start to completion every interval, busiest first. ' +
    'A request is attributed where it is made, in the submitting task, and counted at its completion (tp_btf block/block_rq_complete). ' +
    'Where it is made, the first hook this kernel has: tp_btf block/block_io_start (Linux 6.5+; requests of disks with queue/iostats 0 are not seen) ' +
    'or tp_btf block/block_getrq (every request; one that a bio is merged in front of is not seen)',
  mode: 'interval',
  liveness: blockioLiveness,
  object: 'top_blockio.bpf.o',
  struct: 'blockio_stats',
  interval: { map: 'stats', key: 'blockio_key', value: 'blockio_stats', sort: '-ios,-bytes,-time_us' },
  fields: [
    { ...field.pid, description: 'process that submitted the I/O (write-back by the kernel\'s flusher shows as a kworker)' },
    field.comm,
    { name: 'op_nr', type: 'number', member: 'op', description: 'the operation as the kernel numbers it (REQ_OP_*)' },
    { name: 'op', type: 'string', decode: 'derive', derive: { from: ['op_nr'], fn: opName, maxBytes: OP_NAME_BYTES }, description: 'read, write, flush, discard, write_zeroes, ...' },
    { name: 'rw', type: 'string', decode: 'derive', derive: { from: ['op_nr'], fn: (op: number) => (op === REQ_OP_WRITE ? 'W' : 'R'), maxBytes: 3 }, description: 'IG\'s R/W: W for writes, R for every other operation (op tells them apart: a discard is no read)' },
    { name: 'dev_t', type: 'number', member: 'dev', description: 'the disk, as the kernel\'s dev_t (major << 20 | first minor)' },
    { name: 'major', type: 'number', decode: 'derive', derive: { from: ['dev_t'], fn: devMajor }, description: 'the disk\'s major number' },
    { name: 'minor', type: 'number', decode: 'derive', derive: { from: ['dev_t'], fn: devMinor }, description: 'the disk\'s minor number (its first minor: partitions count as their disk)' },
    { name: 'bytes', type: 'number', description: 'bytes of the I/Os completed in the interval' },
    { name: 'ios', type: 'number', description: 'I/Os (block requests) completed in the interval' },
    { name: 'time_us', type: 'number', description: 'their time from start to completion added up, µs' },
    field.mntns_id, field.cgroup_id,
    ...intervalFields,
  ] satisfies FieldSpec[],
  // block_io_start and block_getrq run in the submitting task; tid, uid and gid are not in the rows
  kernelFilters: kernelFiltersExcept(TASK_KERNEL_FILTERS, 'tid', 'uid', 'gid'),
  requires: [{ tracepoint: 'block/block_rq_complete' }],
  variants: [
    { name: 'tp_btf block/block_io_start and block/block_rq_complete', requires: [{ tracepoint: 'block/block_io_start' }], programs: ['top_blockio_start', 'top_blockio_complete'] },
    { name: 'tp_btf block/block_getrq and block/block_rq_complete', requires: [{ tracepoint: 'block/block_getrq' }], programs: ['top_blockio_getrq', 'top_blockio_complete_bio'] },
  ],
} satisfies GadgetDefinition;
