import { field, kernelFiltersExcept, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { DEFAULT_FREQUENCY, profileCpuHooks } from './cpu/sampler.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

export const profileCpu = {
  id: 'profile/cpu',
  description: 'Sample on-CPU stacks (kernel and user) at a frequency per CPU for the step\'s duration: folded stacks with counts, for flame graphs (cpu-clock perf events, stack maps)',
  mode: 'profile',
  object: 'profile_cpu.bpf.o',
  struct: 'stack_key',
  fields: [
    field.pid,
    field.comm,
    { name: 'count', type: 'number', description: 'samples with this stack' },
    { name: 'leaf', type: 'string', description: 'the innermost frame: the function that was on the CPU (kernel frames end in _[k])' },
    { name: 'stack', type: 'string', description: 'the folded stack: "comm;outermost;...;innermost" (flame graph tools read it with the count)' },
  ],
  // rows are per process: the task filters on fields a row has
  kernelFilters: kernelFiltersExcept(TASK_KERNEL_FILTERS, 'tid', 'uid', 'gid', 'mntns_id'),
  requires: [{ perfEvent: 'cpu-clock' }],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      frequency: { type: 'integer', minimum: 1, maximum: 10000, default: DEFAULT_FREQUENCY, description: 'samples per second on each CPU (49 Hz as in BCC and Inspektor Gadget: off the timer tick\'s beat)' },
      user_only: { type: 'boolean', default: false, description: 'user stacks only' },
      kernel_only: { type: 'boolean', default: false, description: 'kernel stacks only' },
      include_idle: { type: 'boolean', default: false, description: 'count the idle task (pid 0) too' },
    },
    not: { required: ['user_only', 'kernel_only'], properties: { user_only: { const: true }, kernel_only: { const: true } } },
  },
  constants: (params) => ({
    targ_user_stacks: params.kernel_only !== true,
    targ_kernel_stacks: params.user_only !== true,
    targ_include_idle: params.include_idle === true,
  }),
  profile: profileCpuHooks,
} satisfies GadgetDefinition;
