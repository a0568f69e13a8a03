import fs from 'node:fs';
import { field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** The kernel's PAGE_SIZE in kB: sysfs (kernfs) reports it as its block size. */
function pageKb(): bigint {
  return BigInt(fs.statfsSync('/sys').bsize / 1024);
}

export const traceOomkill = {
  id: 'trace/oomkill',
  description:
    'Trace OOM kills: the victim (tpid, tcomm, its memory in kB, uid, oom_score_adj, cgroup) and the task whose ' +
    'allocation invoked the OOM killer (kpid, kcomm). Filters on tpid, ttid, tcomm, uid, mntns_id and the workload ' +
    'cgroup are checked on the victim, in the kernel. tp_btf/mark_victim, Linux 6.9+ (earlier kernels pass the tracepoint only a pid)',
  mode: 'stream',
  liveness: { unproven: 'provoking an OOM kill is not safe' },
  object: 'trace_oomkill.bpf.o',
  struct: 'oomkill_event',
  fields: [
    field.timestamp,
    { name: 'kpid', type: 'number', description: 'process id of the task whose allocation invoked the OOM killer' },
    { name: 'kcomm', type: 'string', description: "that task's command name" },
    { name: 'tpid', type: 'number', description: "the victim's process id" },
    { name: 'ttid', type: 'number', description: "the victim's thread the kernel chose (the one holding its mm)" },
    { name: 'tcomm', type: 'string', description: "the victim's command name" },
    { name: 'total_vm', type: 'number', description: "the victim's virtual memory, kB" },
    { name: 'anon_rss', type: 'number', description: "the victim's resident anonymous memory, kB" },
    { name: 'file_rss', type: 'number', description: "the victim's resident file-backed memory, kB" },
    { name: 'shmem_rss', type: 'number', description: "the victim's resident shared memory, kB" },
    { name: 'uid', type: 'number', description: "the victim's user id" },
    { name: 'oom_score_adj', type: 'number', description: "the victim's oom_score_adj (-1000..1000)" },
    { ...field.mntns_id, description: "the victim's mount namespace inode number" },
    { ...field.cgroup_id, description: "the victim's cgroup v2 id (inode of its directory)" },
  ],
  // checked on the victim in the kernel (gadget_skip_task), as is the workload cgroup
  kernelFilters: {
    tpid: TASK_KERNEL_FILTERS.pid, ttid: TASK_KERNEL_FILTERS.tid, tcomm: TASK_KERNEL_FILTERS.comm,
    uid: TASK_KERNEL_FILTERS.uid, mntns_id: TASK_KERNEL_FILTERS.mntns_id,
  },
  requires: [{ tracepoint: 'oom/mark_victim' }],
  constants: () => ({ page_kb: pageKb() }),
} satisfies GadgetDefinition;
