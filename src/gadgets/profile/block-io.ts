import { deviceNumber, histogramBars, profileBlockioHooks } from './block-io/histogram.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

export const profileBlockio = {
  id: 'profile/block-io',
  description: 'Block request latency (issue to completion) as log2 histograms per disk and operation, kept in the kernel for the step\'s duration (tp_btf block_rq_issue/block_rq_complete, Linux 5.5+); node-wide: requests carry no task',
  mode: 'profile',
  object: 'profile_blockio.bpf.o',
  struct: 'hist_key',
  fields: [
    { name: 'device', type: 'string', description: 'the disk ("vda", "loop0"; "MAJ:MIN" when it is gone)' },
    { name: 'major', type: 'number', description: 'device major number' },
    { name: 'minor', type: 'number', description: 'device minor number (of the disk, not a partition)' },
    { name: 'op', type: 'string', description: 'read, write, flush, discard, write_zeroes, ...' },
    { name: 'low_us', type: 'number', description: 'the bucket\'s lowest latency, µs' },
    { name: 'high_us', type: 'number', description: 'the bucket\'s highest latency, µs' },
    { name: 'count', type: 'number', description: 'requests in the bucket' },
  ],
  kernelFilters: {},
  // block requests carry no task
  selects: 'none',
  requires: [{ tracepoint: 'block/block_rq_issue' }, { tracepoint: 'block/block_rq_complete' }],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      device: { type: 'string', minLength: 1, description: 'only this disk (checked in the kernel): "vda", "/dev/loop0" or "7:0"' },
    },
  },
  constants: (params) => ({ targ_dev: params.device === undefined ? 0 : deviceNumber(params.device as string) }),
  profile: profileBlockioHooks,
  report: histogramBars,
} satisfies GadgetDefinition;
