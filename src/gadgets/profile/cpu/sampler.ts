/**
 * profile/cpu's side of the profile mode: one cpu-clock perf event per
 * online CPU at the step's frequency, each with the BPF program attached;
 * new processes announced on the notice ring get their memory maps read at
 * once (a short-lived one is gone by the end); at stop the (pid, comm, user
 * stack, kernel stack) → count map is read and symbolized into folded stacks.
 */
import type { BpfObject } from '../../../ebpf/object.ts';
import { onlineCpus, openCpuClock } from '../../../ebpf/perf.ts';
import { readStack } from '../../../ebpf/stacks.ts';
import { demangle, Symbolizer } from '../../../ebpf/symbolizer.ts';
import type { ProfileHooks, ProfileRun } from '../../../steps/types.ts';

export const DEFAULT_FREQUENCY = 49;
const EEXIST = 17;

/** One counted stack pair, as read from the `counts` map (struct stack_key). */
export interface CountedStack {
  pid: number;
  comm: string;
  userStackId: number;
  kernelStackId: number;
  count: number;
}

export interface FoldedRow {
  pid: number;
  comm: string;
  count: number;
  /** the innermost frame: the function that was running */
  leaf: string;
  /** "comm;outermost;...;innermost", kernel frames suffixed _[k] */
  stack: string;
  [field: string]: unknown;
}

export const profileCpuHooks: ProfileHooks = {
  notices: true,
  start(obj, params) {
    const frequency = (params.frequency as number | undefined) ?? DEFAULT_FREQUENCY;
    for (const cpu of onlineCpus()) obj.attachPerfEvent('profile_cpu', openCpuClock(cpu, frequency));
    return cpuRun(obj);
  },
};

function cpuRun(obj: BpfObject): ProfileRun {
  const symbolizer = new Symbolizer();
  return {
    notice(dv, offset) {
      symbolizer.noteProcess(dv.getUint32(offset, true));
    },
    collect() {
      const counts = obj.hashMap('counts');
      const stacks = obj.hashMap('stacks');
      const layout = obj.btf.struct('stack_key');
      const at = Object.fromEntries(layout.members.map((m) => [m.name, m.offset]));
      const counted: CountedStack[] = [];
      for (const [k, v] of counts.entries()) {
        const comm = k.subarray(at.comm, at.comm + 16);
        const nul = comm.indexOf(0);
        counted.push({
          pid: k.readUInt32LE(at.pid),
          comm: comm.toString('utf8', 0, nul < 0 ? 16 : nul),
          userStackId: k.readInt32LE(at.user_stack_id),
          kernelStackId: k.readInt32LE(at.kernel_stack_id),
          count: Number(v.readBigUInt64LE(0)),
        });
      }
      const rows = foldStacks(counted, (id) => readStack(stacks, id), symbolizer);
      const collided = counted.filter((c) => c.userStackId === -EEXIST || c.kernelStackId === -EEXIST).reduce((n, c) => n + c.count, 0);
      const dropped = obj.readGlobal('dropped_samples');
      const warnings: string[] = [];
      if (collided) warnings.push(`${collided} samples lost a stack to a full stack map (-EEXIST); a shorter step or a lower frequency keeps them`);
      if (dropped) warnings.push(`${dropped} samples were not counted: the counts map was full`);
      return { rows, lost: dropped, warnings };
    },
  };
}

/**
 * Counted stack pairs → folded rows, one per distinct folded stack (two pairs
 * can fold the same: the same function at two call sites' return addresses
 * in it), sorted by count, highest first.
 */
export function foldStacks(counted: CountedStack[], stackOf: (id: number) => bigint[], symbolizer: Symbolizer): FoldedRow[] {
  const kernelNames = new Map<number, string[]>();
  const rows = new Map<string, FoldedRow>();
  const frameLists: { c: CountedStack; frames: string[] }[] = [];
  // a user stack recurs under many kernel stacks (and the other way round): name each once
  const userNames = new Map<string, string[]>();
  for (const c of counted) {
    const userKey = `${c.pid}:${c.userStackId}`;
    let user = userNames.get(userKey);
    if (!user) {
      user = c.userStackId >= 0 ? symbolizer.userFrames(c.pid, stackOf(c.userStackId)) : [];
      userNames.set(userKey, user);
    }
    let kernel = kernelNames.get(c.kernelStackId);
    if (!kernel) {
      kernel = c.kernelStackId >= 0 ? symbolizer.kernelFrames(stackOf(c.kernelStackId)).map((f) => `${f}_[k]`) : [];
      kernelNames.set(c.kernelStackId, kernel);
    }
    // innermost first from the kernel: the kernel frames sit on top of the user ones
    frameLists.push({ c, frames: [...kernel, ...user] });
  }
  const names = demangle(frameLists.flatMap((f) => f.frames));
  for (const { c, frames } of frameLists) {
    const outerFirst = frames.map((f) => names.get(f) ?? f).reverse();
    if (!outerFirst.length) outerFirst.push('[no stack]');
    // ';' separates frames in the folded format: keep it out of names (C++ templates, JS)
    const stack = [c.comm, ...outerFirst].map((f) => f.replace(/;/g, ':')).join(';');
    const row = rows.get(`${c.pid}\0${stack}`);
    if (row) row.count += c.count;
    else rows.set(`${c.pid}\0${stack}`, { pid: c.pid, comm: c.comm, count: c.count, leaf: outerFirst[outerFirst.length - 1], stack });
  }
  return [...rows.values()].sort((a, b) => b.count - a.count);
}
