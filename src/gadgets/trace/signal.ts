import { errNameOfRet, field, TASK_KERNEL_FILTERS } from '../common-fields.ts';
import { SIGNALS } from '../../steps/names/index.ts';
import type { GadgetDefinition } from '../../steps/types.ts';

/** What became of a signal: the kernel's enum trace_signal_result, plus a send that failed (bpf/trace_signal.h). */
export const SIGNAL_RESULTS: Readonly<Record<number, string>> = {
  0: 'delivered',
  1: 'ignored',
  2: 'already_pending',
  3: 'overflow_fail',
  4: 'lose_info',
  5: 'failed',
};

const SIGNAL_NAMES = Object.values(SIGNALS);

/** A signal param: a number or a name (SIGKILL) → the number. */
function signalNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  const n = Object.entries(SIGNALS).find(([, name]) => name === value);
  if (!n) throw new Error(`trace/signal: params.signal: unknown signal "${String(value)}" (known: ${SIGNAL_NAMES.join(', ')})`);
  return Number(n[0]);
}

export const traceSignal = {
  id: 'trace/signal',
  description:
    'Trace signals: every signal the kernel generates (who sent it to whom, si_code, delivered or ignored or pending), ' +
    'and every kill/tkill/tgkill/rt_sigqueueinfo/rt_tgsigqueueinfo/pidfd_send_signal that failed (result failed, ret -errno). ' +
    'The sender (pid, comm, filters) is the task that raised it: the caller of kill(2); for a fault (SIGSEGV, SIGBUS, SIGFPE), ' +
    'SIGPIPE or seccomp\'s SIGSYS the task itself (pid == tpid); for SIGCHLD the exiting child. ' +
    'Needs tp_btf/signal_generate (Linux 5.5+); failed sends need the syscalls tracepoints',
  mode: 'stream',
  // the canary sends the step's signal (SIGUSR1 when any will do) to a child of its own, and
  // fails one send (to a pid no process has): a delivered and a failed signal, both its own
  liveness: (params) => {
    if (params.pid !== undefined) return { unproven: 'params.pid narrows the step to one target process, which the canary cannot signal' };
    // a bad params.signal is the params' problem, said elsewhere: any signal will do here
    const n = params.signal === undefined || (typeof params.signal !== 'number' && !SIGNAL_NAMES.includes(String(params.signal))) ? undefined : signalNumber(params.signal);
    return { canary: [n === undefined ? 'signal' : `signal=${n}`] };
  },
  object: 'trace_signal.bpf.o',
  struct: 'signal_event',
  fields: [
    field.timestamp,
    { ...field.pid, description: 'sender process id (the task that raised the signal)' },
    { ...field.tid, description: 'sender thread id' },
    { ...field.comm, description: "sender's command name" },
    { name: 'tpid', type: 'number', description: 'target process id; for a failed send the pid argument as passed (0 or negative for groups, a thread id for tkill, 0 for pidfd_send_signal)' },
    { name: 'ttid', type: 'number', description: 'target thread id; for a failed send the tid argument of tkill/tgkill/rt_tgsigqueueinfo, else 0' },
    { name: 'tcomm', type: 'string', description: "target's command name (empty for a failed send)" },
    { name: 'signal', type: 'number', names: SIGNALS, description: 'signal number (0 for a failed kill(pid, 0) probe); filters take names: signal==SIGKILL' },
    { name: 'signal_name', member: 'signal', type: 'string', decode: 'enum', names: SIGNALS, description: 'signal name (SIGKILL)' },
    { name: 'code', type: 'number', description: 'si_code: 0 SI_USER (kill), -6 SI_TKILL, 0x80 SI_KERNEL, or the fault code (SEGV_MAPERR 1, ...)' },
    { name: 'result', type: 'string', decode: 'enum', names: SIGNAL_RESULTS, description: 'delivered, ignored, already_pending, overflow_fail, lose_info (TRACE_SIGNAL_*), or failed (the send returned an error)' },
    { name: 'ret', type: 'number', description: "0, or a failed send's negative errno" },
    errNameOfRet('errno name of a failed send (ESRCH), "" otherwise'),
    { ...field.uid, description: "sender's user id" },
    { ...field.gid, description: "sender's group id" },
    { ...field.mntns_id, description: "sender's mount namespace; 0 for a SIGCHLD from an exiting child (it has left its namespaces)" },
    { ...field.cgroup_id, description: "sender's cgroup v2 id" },
  ],
  kernelFilters: TASK_KERNEL_FILTERS,
  requires: [
    { tracepoint: 'signal/signal_generate' },
    { tracepoint: 'syscalls/sys_enter_kill', optional: true },
    { tracepoint: 'syscalls/sys_exit_kill', optional: true },
    { tracepoint: 'syscalls/sys_enter_tkill', optional: true },
    { tracepoint: 'syscalls/sys_exit_tkill', optional: true },
    { tracepoint: 'syscalls/sys_enter_tgkill', optional: true },
    { tracepoint: 'syscalls/sys_exit_tgkill', optional: true },
    { tracepoint: 'syscalls/sys_enter_rt_sigqueueinfo', optional: true },
    { tracepoint: 'syscalls/sys_exit_rt_sigqueueinfo', optional: true },
    { tracepoint: 'syscalls/sys_enter_rt_tgsigqueueinfo', optional: true },
    { tracepoint: 'syscalls/sys_exit_rt_tgsigqueueinfo', optional: true },
    // Linux 5.1
    { tracepoint: 'syscalls/sys_enter_pidfd_send_signal', optional: true },
    { tracepoint: 'syscalls/sys_exit_pidfd_send_signal', optional: true },
  ],
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      signal: {
        type: ['integer', 'string'],
        description: 'only this signal, by number (9) or name (SIGKILL)',
        oneOf: [{ type: 'integer', minimum: 1, maximum: 64 }, { type: 'string', enum: SIGNAL_NAMES }],
      },
      failed_only: { type: 'boolean', default: false, description: 'only sends that failed (result failed)' },
      pid: { type: 'integer', minimum: 1, description: 'only signals to this target process (tpid)' },
    },
  },
  constants: (params) => ({
    targ_signal: params.signal === undefined ? 0 : signalNumber(params.signal),
    targ_failed_only: params.failed_only === true,
    targ_tpid: typeof params.pid === 'number' ? params.pid : 0,
  }),
} satisfies GadgetDefinition;
