import { adviseSeccompHooks, cgroupsOf, DEFAULT_CGROUPS, DOCUMENT_FIELDS, documentKind, seccompDocuments } from './seccomp-profile/recorder.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** one `syscalls` hash entry: the 64-byte bitmap, its key and the element header, rounded up */
const CGROUP_BYTES = 128;

export const adviseSeccompProfile = {
  id: 'advise/seccomp-profile',
  description: 'Record the syscalls the watched processes make (the workload\'s cgroup, or the selected containers) as a bitmap per cgroup in the kernel (tp_btf sys_enter, each thread\'s own copy in task local storage, Linux 5.11+, and the cgroups\' bitmaps in a hash of params.cgroups entries; a workload from its first exec (tp_btf sched_process_exec), containers from attach; nothing per syscall reaches user space), and write one OCI seccomp profile allowing exactly those (defaultAction SCMP_ACT_ERRNO; execve always, as the runtime execs the workload under the filter). The step\'s result is that document: a .json output is the profile itself. ' +
    'With params.document: SeccompProfile the document is instead a security-profiles-operator SeccompProfile object (security-profiles-operator.x-k8s.io/v1beta1; a .yaml output for kubectl apply -f) with the same spec, named after the pod that made the syscalls (in its namespace), or their common owner, else after the recipe. ' +
    'x86-64 syscall names: a 32-bit (ia32) process\'s syscalls have other numbers and would be named wrong',
  mode: 'profile',
  object: 'advise_seccomp.bpf.o',
  struct: 'syscall_bitmap',
  document: true,
  fields: [
    { name: 'defaultAction', type: 'string', description: 'SCMP_ACT_ERRNO: a syscall not listed fails with EPERM' },
    { name: 'architectures', type: 'string[]', description: 'SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32' },
    { name: 'syscalls', type: 'object[]', description: 'one rule: {names: the syscalls seen, sorted; action: SCMP_ACT_ALLOW}' },
    { name: 'cgroups', type: 'string[]', description: 'the cgroup ids that made them (kept in raw/; not part of either document)' },
  ],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      document: {
        enum: ['oci', 'SeccompProfile'], default: 'oci',
        description: 'oci: the OCI (runtime-spec) seccomp profile; SeccompProfile: the security-profiles-operator object carrying it',
      },
      cgroups: {
        type: 'integer', minimum: 1, maximum: 65536, default: DEFAULT_CGROUPS,
        description: 'cgroups recorded (the first ones seen; the syscalls of later ones are counted as lost, with a warning)',
      },
    },
  },
  // the hash is allocated whole at load: a u64 key, the bitmap and the kernel's element header (~48 bytes), rounded up
  kernelMemory: (params) => ({
    bytes: cgroupsOf(params) * CGROUP_BYTES,
    what: `its per-cgroup bitmaps (${cgroupsOf(params)} cgroups × ${CGROUP_BYTES} bytes)`,
    lower: 'params.cgroups',
  }),
  // the scope (workload cgroup, containers) is the one filter: rows are not per task
  kernelFilters: {},
  requires: [{ tracepoint: 'raw_syscalls/sys_enter' }, { tracepoint: 'sched/sched_process_exec' }],
  profile: adviseSeccompHooks,
  advise: {
    generate: seccompDocuments,
    fields: (params) => [...DOCUMENT_FIELDS[documentKind(params)]],
  },
} satisfies GadgetDefinition;
