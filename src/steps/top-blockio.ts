import { field, kernelFiltersExcept, TASK_KERNEL_FILTERS } from './common-fields.ts';
import { intervalFields } from './modes/interval.ts';
import type { FieldSpec, GadgetDefinition } from './types.ts';

export const topBlockio = {
  id: 'top/block-io',
  description:
    'Block I/O per submitting process, disk and direction (IG top block-io): bytes, I/Os and time from start to completion every interval, busiest first. ' +
    'Hooks: tp_btf block/block_io_start (in the submitting task) and block/block_io_done (Linux 6.5+); requests of disks with queue/iostats 0 are not seen',
  mode: 'interval',
  object: 'top_blockio.bpf.o',
  struct: 'blockio_stats',
  interval: { map: 'stats', key: 'blockio_key', value: 'blockio_stats', sort: '-ios,-bytes,-time_us' },
  fields: [
    { ...field.pid, description: 'process that submitted the I/O (write-back by the kernel\'s flusher shows as a kworker)' },
    field.comm,
    { name: 'rw', type: 'string', member: 'write', decode: 'enum', names: { 0: 'R', 1: 'W' }, description: 'W writes, R reads (and the other operations: flush, discard)' },
    { name: 'dev_t', type: 'number', member: 'dev', description: 'the disk, as the kernel\'s dev_t (major << 20 | first minor)' },
    { name: 'major', type: 'number', decode: 'derive', derive: { from: ['dev_t'], fn: (d: number) => d >>> 20 }, description: 'the disk\'s major number' },
    { name: 'minor', type: 'number', decode: 'derive', derive: { from: ['dev_t'], fn: (d: number) => d & 0xfffff }, description: 'the disk\'s minor number (its first minor: partitions count as their disk)' },
    { name: 'bytes', type: 'number', description: 'bytes of the I/Os completed in the interval' },
    { name: 'ios', type: 'number', description: 'I/Os (block requests) completed in the interval' },
    { name: 'time_us', type: 'number', description: 'their time from start to completion added up, µs' },
    field.mntns_id, field.cgroup_id,
    ...intervalFields,
  ] satisfies FieldSpec[],
  // block_io_start runs in the submitting task; tid, uid and gid are not in the rows
  kernelFilters: kernelFiltersExcept(TASK_KERNEL_FILTERS, 'tid', 'uid', 'gid'),
  requires: [{ tracepoint: 'block/block_io_start' }, { tracepoint: 'block/block_io_done' }],
} satisfies GadgetDefinition;
