import { field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

export const snapshotProcess = {
  id: 'snapshot/process',
  description: 'List the processes (or, with threads: true, the threads) running now, from one pass of a BPF task iterator',
  mode: 'snapshot',
  object: 'snapshot_process.bpf.o',
  struct: 'process_entry',
  iterator: 'snapshot_process',
  fields: [field.pid, field.ppid, field.tid, field.comm, field.uid, field.gid, field.mntns_id, field.cgroup_id],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [{ iterator: 'task' }],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      threads: { type: 'boolean', default: false, description: 'one entry per thread instead of per process' },
    },
  },
  constants: (params) => ({ show_threads: params.threads === true }),
} satisfies GadgetDefinition;
