import { field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { CAPABILITIES } from '../../steps/names/index.ts';
import { SYSCALLS_X86_64 } from '../../steps/names/syscalls-x86_64.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** Syscall names for this machine's architecture; elsewhere the syscall shows as its number. */
const SYSCALLS: Readonly<Record<number, string>> = process.arch === 'x64' ? SYSCALLS_X86_64 : {};

const CAP_NUMBERS = new Map(Object.entries(CAPABILITIES).map(([n, name]) => [name, Number(n)]));

/** The `caps` param (CAP_* names or numbers) as the bit mask trace_capabilities.bpf.c tests; 0 = every capability. */
export function capsMask(caps: unknown): bigint {
  if (!Array.isArray(caps)) return 0n;
  let mask = 0n;
  for (const c of caps as (string | number)[]) {
    // the params schema admits only known names and 0..63
    const n = typeof c === 'number' ? c : CAP_NUMBERS.get(c)!;
    mask |= 1n << BigInt(n);
  }
  return mask;
}

export const traceCapabilities = {
  id: 'trace/capabilities',
  description:
    'Trace capability checks: which process needed which capability (CAP_*) in which syscall, and whether the kernel ' +
    'allowed it, as cap_capable decides. Hooks, the first this kernel has: tracepoint capability/cap_capable (Linux 6.14+), ' +
    'fexit on cap_capable, or a kprobe and kretprobe on it; the same fields and values from each. It sees every check, the ' +
    'silent ones too (e.g. CAP_SYS_ADMIN on each mmap/brk/execve of a non-root task for overcommit accounting, denied and ' +
    'harmless). Inspektor Gadget\'s audit and insetid fields (cap_capable\'s CAP_OPT_* bits) are not reported: the ' +
    'tracepoint does not carry them, and a field only older kernels fill would make a recipe mean different things on ' +
    'different kernels.',
  mode: 'stream',
  liveness: { canary: ['net'] },
  object: 'trace_capabilities.bpf.o',
  struct: 'cap_event',
  fields: [
    field.timestamp, field.pid, field.tid,
    { ...field.uid, description: 'user id of the acting task (the checked credentials are normally its own)' },
    { ...field.gid, description: 'group id of the acting task' },
    field.comm,
    { name: 'cap', type: 'number', names: CAPABILITIES, description: 'capability number (filters take names: cap==CAP_NET_ADMIN)' },
    { name: 'cap_name', type: 'string', member: 'cap', decode: 'enum', names: CAPABILITIES, description: 'capability name (CAP_*)' },
    { name: 'ret', type: 'number', description: '0 when the task has the capability, -1 (-EPERM) when not' },
    {
      name: 'verdict', type: 'string', decode: 'derive',
      derive: { from: ['ret'], fn: (ret: number) => (ret === 0 ? 'allowed' : 'denied'), maxBytes: 9 },
      description: '"allowed" or "denied"',
    },
    { name: 'syscall_nr', type: 'number', member: 'syscall', description: 'number of the syscall the check happened in, -1 outside one (a kernel thread)' },
    {
      name: 'syscall', type: 'string', decode: 'enum', names: SYSCALLS,
      description: 'name of that syscall (x86-64 table from linux-libc-dev; newer or other-architecture syscalls as their number)',
    },
    { name: 'target_userns', type: 'number', description: 'inode of the user namespace the capability was checked against' },
    field.mntns_id, field.cgroup_id,
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [],
  variants: [
    { name: 'tracepoint capability/cap_capable', requires: [{ tracepoint: 'capability/cap_capable' }], programs: ['cap_capable'] },
    { name: 'fexit cap_capable', requires: [{ fentry: 'cap_capable' }], programs: ['cap_capable_fexit'] },
    { name: 'kprobe cap_capable', requires: [{ kprobe: 'cap_capable' }], programs: ['cap_capable_entry', 'cap_capable_return'] },
  ],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      unique: {
        type: 'boolean', default: false,
        description: 'report each capability once per process (decided in the kernel, before user-space filters)',
      },
      caps: {
        type: 'array',
        description: 'only these capabilities (CAP_* names or numbers), checked in the kernel',
        items: { anyOf: [{ enum: [...CAP_NUMBERS.keys()] }, { type: 'integer', minimum: 0, maximum: 63 }] },
      },
    },
  },
  constants: (params) => ({ targ_unique: params.unique === true, targ_caps: capsMask(params.caps) }),
} satisfies GadgetDefinition;
