import { field, kernelFiltersExcept, TASK_KERNEL_FILTERS } from './common-fields.ts';
import { formatBytes } from '../steps/duration.ts';
import { DEFAULT_CGROUPS, DEFAULT_SLOTS, sizes, traceloopHooks } from './traceloop/recorder.ts';
import { straceText } from './traceloop/strace.ts';
import { pathArgTable, syscallNumber } from './traceloop/syscalls.ts';
import type { GadgetDefinition } from '../steps/types.ts';

/** bpf/traceloop.h TL_NR_MAX: the per-syscall tables' size */
const NR_MAX = 512;
/** slots × cgroups: the array map is allocated whole at load (SLOT_BYTES a slot) */
const MAX_TOTAL_SLOTS = 1 << 20;
/** sizeof(struct tl_slot) (bpf/traceloop.h; test/steps/traceloop.test.ts checks it against the object's BTF) */
export const SLOT_BYTES = 384;
/** per cgroup beyond its slots: its `bufs` hash entry, rounded up */
const CGROUP_BYTES = 512;

function syscallMask(names: string[]): number[] {
  const on = new Array<number>(NR_MAX).fill(0);
  for (const name of names) {
    const nr = syscallNumber(name);
    if (nr === undefined) throw new Error(`traceloop: params.syscalls names "${name}", which is not an x86-64 syscall (see src/steps/names/syscalls-x86_64.ts)`);
    on[nr] = 1;
  }
  return on;
}

export const traceloop = {
  id: 'traceloop',
  description: 'A flight recorder of syscalls: the last N of each cgroup (the workload\'s, or each container\'s), with arguments, paths, return values, kept in the kernel in circular buffers that overwrite and read once when the step stops (raw_syscalls tracepoints); strace-like lines as .strace outputs',
  mode: 'profile',
  object: 'traceloop.bpf.o',
  struct: 'tl_slot',
  fields: [
    field.timestamp, field.pid, field.tid, field.comm,
    { name: 'syscall', type: 'string', description: 'the syscall\'s name (x86-64 table; syscall_N when unknown)' },
    { name: 'nr', type: 'number', description: 'the syscall number' },
    { name: 'args', type: 'string[]', description: 'the arguments: numbers, addresses as "0x…" ("NULL"), the path read for a path argument (all six raw for a syscall traceloop does not know)' },
    { name: 'ret', type: 'number', description: 'the return value (-errno on failure); null when the syscall had not returned (still in it, exit, or the process died in it)' },
    { name: 'err_name', type: 'string', description: 'the errno\'s name when ret is -errno (ENOENT), "" otherwise' },
    { name: 'path', type: 'string', description: 'the path argument of a path-taking syscall, read at entry (255 bytes at most), "" otherwise' },
    { name: 'seq', type: 'number', description: 'the syscall\'s sequence number in its cgroup (gaps: overwritten)' },
    field.mntns_id, field.cgroup_id,
  ],
  // a slot keeps no uid or gid: filters on those would have no field to check
  kernelFilters: kernelFiltersExcept(TASK_KERNEL_FILTERS, 'uid', 'gid'),
  requires: [{ tracepoint: 'raw_syscalls/sys_enter' }, { tracepoint: 'raw_syscalls/sys_exit' }],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      slots: { type: 'integer', minimum: 1, maximum: 65536, default: DEFAULT_SLOTS, description: 'syscalls kept per cgroup: the last ones, older ones are overwritten' },
      cgroups: { type: 'integer', minimum: 1, maximum: 4096, default: DEFAULT_CGROUPS, description: 'cgroups with a buffer (the first ones seen making syscalls; later ones are counted as lost)' },
      syscalls: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9_]+$' }, description: 'record only these syscalls (names)' },
    },
  },
  // the slot array is allocated whole at load, so the budget counts it whether or not it fills
  kernelMemory: (params) => {
    const { slots, cgroups } = sizes(params);
    return {
      bytes: slots * cgroups * SLOT_BYTES + cgroups * CGROUP_BYTES,
      what: `its slots (${slots} slots × ${cgroups} cgroups × ${SLOT_BYTES} bytes, and ${CGROUP_BYTES} bytes a cgroup)`,
      lower: 'params.slots or params.cgroups',
    };
  },
  constants: (params) => {
    const { slots, cgroups } = sizes(params);
    if (slots * cgroups > MAX_TOTAL_SLOTS) throw new Error(`traceloop: slots × cgroups is ${slots * cgroups}, more than ${MAX_TOTAL_SLOTS} (${formatBytes(MAX_TOTAL_SLOTS * SLOT_BYTES)} of kernel memory); lower params.slots or params.cgroups`);
    const names = params.syscalls as string[] | undefined;
    return {
      targ_slots: slots,
      targ_max_cgroups: cgroups,
      targ_syscall_filter: names !== undefined,
      targ_syscall_on: names ? syscallMask(names) : [],
      targ_path_arg: pathArgTable(NR_MAX),
    };
  },
  profile: traceloopHooks,
  outputs: { strace: straceText },
} satisfies GadgetDefinition;
