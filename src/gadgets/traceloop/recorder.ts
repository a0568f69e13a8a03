/**
 * traceloop's side of the profile mode: size the per-cgroup circular buffers
 * before load, attach sys_enter/sys_exit, and at stop read every cgroup's
 * slots into rows ordered by time (within a cgroup, by sequence number): the
 * last `slots` syscalls of each cgroup, the newest last. A slot whose
 * syscall had not returned (the thread is still in it, or it was exit or
 * the process died in it) has ret null.
 */
import type { BpfObject } from '../../ebpf/object.ts';
import { ERRNO } from '../../steps/names/index.ts';
import { SYSCALLS_X86_64 } from '../../steps/names/syscalls-x86_64.ts';
import type { ProfileHooks, StepContext } from '../../steps/types.ts';
import { argKinds, type ArgKind } from './syscalls.ts';
import { wallTime } from '../../util/wall-time.ts';

export const DEFAULT_SLOTS = 1024;
export const DEFAULT_CGROUPS = 16;

/** One recorded syscall, as NDJSON and the .strace output read it. */
export interface SyscallRow {
  timestamp: string;
  pid: number;
  tid: number;
  comm: string;
  syscall: string;
  nr: number;
  /** per argument: a number, an address as "0x…" ("NULL"), or the path read */
  args: (number | string)[];
  /** null: the syscall had not returned when the step stopped */
  ret: number | null;
  err_name: string;
  path: string;
  seq: number;
  mntns_id: number;
  cgroup_id: number;
  [field: string]: unknown;
}

/**
 * The kernel's own restart codes (include/linux/errno.h): a syscall a signal
 * interrupted returns one to the signal code, which restarts it or turns it
 * into EINTR; sys_exit sees them, user space never does.
 */
const RESTART_CODES: Readonly<Record<number, string>> = { 512: 'ERESTARTSYS', 513: 'ERESTARTNOINTR', 514: 'ERESTARTNOHAND', 515: 'ENOIOCTLCMD', 516: 'ERESTART_RESTARTBLOCK' };

/** The step's slots per cgroup and cgroups, defaults filled in. */
export const sizes = (params: Record<string, unknown>) => ({
  slots: (params.slots as number | undefined) ?? DEFAULT_SLOTS,
  cgroups: (params.cgroups as number | undefined) ?? DEFAULT_CGROUPS,
});

export const traceloopHooks: ProfileHooks = {
  beforeLoad(obj, params) {
    const { slots, cgroups } = sizes(params);
    obj.setMaxEntries('bufs', cgroups);
    obj.setMaxEntries('slots', slots * cgroups);
  },
  start(obj, params, ctx) {
    obj.attachAll();
    return {
      collect() {
        const rows = readSlots(obj, sizes(params).slots, ctx);
        const dropped = obj.readGlobal('dropped_syscalls');
        const warnings = dropped ? [`${dropped} syscalls were not recorded: more than ${sizes(params).cgroups} cgroups made syscalls (raise params.cgroups)`] : [];
        return { rows, lost: dropped, warnings };
      },
    };
  },
};

function readSlots(obj: BpfObject, perCgroup: number, ctx: StepContext): SyscallRow[] {
  const layout = obj.btf.struct('tl_slot');
  const at = Object.fromEntries(layout.members.map((m) => [m.name, m.offset]));
  const slots = obj.hashMap('slots');
  const key = Buffer.alloc(4);
  const rows: (SyscallRow & { boot: bigint })[] = [];
  for (const [, value] of obj.hashMap('bufs').entries()) {
    const index = value.readUInt32LE(8);
    for (let i = 0; i < perCgroup; i++) {
      key.writeUInt32LE(index * perCgroup + i);
      const s = slots.lookup(key);
      if (!s || s.readBigUInt64LE(at.seq) === 0n) continue;
      rows.push(slotRow(s, at, ctx.bootToWallNs));
    }
  }
  rows.sort((a, b) => (a.boot < b.boot ? -1 : a.boot > b.boot ? 1 : a.cgroup_id - b.cgroup_id || a.seq - b.seq));
  return rows.map(({ boot: _boot, ...row }) => row);
}

const cstring = (b: Buffer) => {
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
};

/** A u64 as a number where exact, else as hex text. */
const u64 = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : `0x${v.toString(16)}`);

/** One raw argument register as its kind reads it. */
function argValue(raw: bigint, kind: ArgKind | undefined): number | string {
  switch (kind) {
    case 'fd': case 'int': case 'sig':
      return Number(BigInt.asIntN(32, raw));
    case 'uint': case 'oflags': case 'mode':
      return Number(BigInt.asUintN(32, raw));
    case 'long': {
      const v = BigInt.asIntN(64, raw);
      return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : `0x${raw.toString(16)}`;
    }
    case 'ptr': case 'path':
      return raw === 0n ? 'NULL' : `0x${raw.toString(16)}`;
    default:
      return u64(raw);
  }
}

function slotRow(s: Buffer, at: Record<string, number>, bootToWallNs: bigint): SyscallRow & { boot: bigint } {
  const nr = s.readUInt32LE(at.nr);
  const syscall = SYSCALLS_X86_64[nr] ?? `syscall_${nr}`;
  const kinds = argKinds(syscall);
  const path = cstring(s.subarray(at.path, at.path + 256));
  const pathAt = kinds?.indexOf('path') ?? -1;
  const args: (number | string)[] = [];
  for (let i = 0; i < (kinds?.length ?? 6); i++) {
    const raw = s.readBigUInt64LE(at.args + 8 * i);
    // the first path argument is the one the kernel read; a NULL or unreadable one stays an address
    args.push(i === pathAt && path !== '' ? path : argValue(raw, kinds?.[i]));
  }
  const done = s.readUInt32LE(at.done) === 1;
  const ret = done ? Number(s.readBigInt64LE(at.ret)) : null;
  const boot = s.readBigUInt64LE(at.timestamp);
  return {
    boot,
    timestamp: wallTime(boot + bootToWallNs),
    pid: s.readUInt32LE(at.pid),
    tid: s.readUInt32LE(at.tid),
    comm: cstring(s.subarray(at.comm, at.comm + 16)),
    syscall,
    nr,
    args,
    ret,
    err_name: ret !== null && ret < 0 && ret >= -4095 ? ERRNO[-ret] ?? RESTART_CODES[-ret] ?? String(-ret) : '',
    path,
    seq: Number(s.readBigUInt64LE(at.seq) - 1n),
    mntns_id: Number(s.readBigUInt64LE(at.mntns_id)),
    cgroup_id: Number(s.readBigUInt64LE(at.cgroup_id)),
  };
}
