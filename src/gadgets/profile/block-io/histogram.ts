/**
 * profile/block-io's side of the profile mode: attach the two request
 * tracepoints; at stop, read the (disk, op, log2 bucket) → count map into
 * histogram rows, and draw them as the classic text bars for report.md.
 */
import fs from 'node:fs';
import type { ProfileHooks } from '../../../steps/types.ts';

/** REQ_OP_* (include/linux/blk_types.h) */
export const BLOCK_OPS: Readonly<Record<number, string>> = {
  0: 'read', 1: 'write', 2: 'flush', 3: 'discard', 5: 'secure_erase', 7: 'zone_append', 9: 'write_zeroes',
};

export interface HistogramRow {
  device: string;
  major: number;
  minor: number;
  op: string;
  /** the bucket's range in µs: [low_us, high_us] */
  low_us: number;
  high_us: number;
  count: number;
  [field: string]: unknown;
}

/** The kernel's dev_t as the block layer encodes it (MINORBITS 20). */
export const devMajor = (dev: number) => dev >>> 20;
export const devMinor = (dev: number) => dev & 0xfffff;

/** A disk's name from sysfs ("loop3", "vda"), or "MAJ:MIN" when it is gone. */
export function deviceName(major: number, minor: number): string {
  try {
    const uevent = fs.readFileSync(`/sys/dev/block/${major}:${minor}/uevent`, 'utf8');
    const m = /^DEVNAME=(.*)$/m.exec(uevent);
    if (m) return m[1];
  } catch {
    // removed meanwhile (a loop device detached)
  }
  return `${major}:${minor}`;
}

/** The dev_t a device param names: "loop0", "/dev/loop0" or "7:0". */
export function deviceNumber(device: string): number {
  const mm = /^(\d+):(\d+)$/.exec(device);
  if (mm) return (Number(mm[1]) << 20) | Number(mm[2]);
  const name = device.replace(/^\/dev\//, '');
  let text: string;
  try {
    text = fs.readFileSync(`/sys/class/block/${name}/dev`, 'utf8');
  } catch (err) {
    throw new Error(`profile/block-io: no block device "${device}" (give a name from /sys/class/block, /dev/NAME or MAJ:MIN)`, { cause: err });
  }
  const [major, minor] = text.trim().split(':').map(Number);
  return (major << 20) | minor;
}

export const profileBlockioHooks: ProfileHooks = {
  start(obj) {
    obj.attachAll();
    return {
      collect() {
        const rows: HistogramRow[] = [];
        for (const [k, v] of obj.hashMap('hist').entries()) {
          const dev = k.readUInt32LE(0);
          const op = k.readUInt32LE(4);
          const slot = k.readUInt32LE(8);
          const major = devMajor(dev);
          const minor = devMinor(dev);
          rows.push({
            device: deviceName(major, minor), major, minor, op: BLOCK_OPS[op] ?? `op${op}`,
            low_us: slot === 0 ? 0 : 2 ** slot, high_us: 2 ** (slot + 1) - 1, count: Number(v.readBigUInt64LE(0)),
          });
        }
        rows.sort((a, b) => a.major - b.major || a.minor - b.minor || a.op.localeCompare(b.op) || a.low_us - b.low_us);
        const dropped = obj.readGlobal('dropped_requests');
        return { rows, lost: dropped, warnings: dropped ? [`${dropped} requests were not counted: the histogram map was full`] : [] };
      },
    };
  },
};

const BAR_WIDTH = 40;

/** biolatency's text histogram, one per device and op, as a markdown code block. */
export function histogramBars(rows: Record<string, unknown>[]): string {
  const groups = new Map<string, HistogramRow[]>();
  for (const r of rows as HistogramRow[]) {
    const key = `${r.device} ${r.op}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  if (!groups.size) return 'No block requests completed.\n';
  const out: string[] = [];
  for (const [key, list] of groups) {
    list.sort((a, b) => a.low_us - b.low_us);
    const max = Math.max(...list.map((r) => r.count));
    const total = list.reduce((n, r) => n + r.count, 0);
    // every bucket from the lowest to the highest seen, the empty ones too, as biolatency prints them
    const byLow = new Map(list.map((r) => [r.low_us, r.count]));
    const first = Math.round(Math.log2(Math.max(list[0].low_us, 1)));
    const last = Math.round(Math.log2(Math.max(list[list.length - 1].low_us, 1)));
    out.push(`${key}: ${total} requests`, '     usecs               : count    distribution');
    for (let slot = list[0].low_us === 0 ? 0 : first; slot <= last; slot++) {
      const low = slot === 0 ? 0 : 2 ** slot;
      const count = byLow.get(low) ?? 0;
      const bar = '*'.repeat(Math.round((count / max) * BAR_WIDTH)).padEnd(BAR_WIDTH);
      out.push(`${String(low).padStart(10)} -> ${String(2 ** (slot + 1) - 1).padEnd(10)}: ${String(count).padEnd(8)} |${bar}|`);
    }
    out.push('');
  }
  return '```\n' + out.join('\n') + '```\n';
}
