import { field, TASK_KERNEL_FILTERS } from './common-fields.ts';
import type { GadgetDefinition } from './types.ts';

export const traceSignal = {
  id: 'trace/signal',
  description: 'Trace signals: every signal generated, plus failed kill-family sends',
  mode: 'stream',
  object: 'trace_signal.bpf.o',
  struct: 'signal_event',
  fields: [
    field.timestamp, field.pid, field.tid, field.comm,
    { name: 'tpid', type: 'number', description: 'target' },
    { name: 'ttid', type: 'number', description: 'target thread' },
    { name: 'tcomm', type: 'string', description: 'target comm' },
    { name: 'signal', type: 'number', description: 'signal' },
    { name: 'code', type: 'number', description: 'si_code' },
    { name: 'result', type: 'number', description: 'result' },
    { name: 'ret', type: 'number', description: 'ret' },
    field.uid, field.gid, field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [{ tracepoint: 'signal/signal_generate' }],
} satisfies GadgetDefinition;
