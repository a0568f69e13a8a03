import { native } from './libbpf.ts';

const CLOCK_REALTIME = 0;
const CLOCK_BOOTTIME = 7;

function nowNs(clock: number): bigint {
  const ts = Buffer.alloc(16);
  native().clock_gettime(clock, ts);
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}

/** Wall-clock ns minus CLOCK_BOOTTIME ns (what bpf_ktime_get_boot_ns returns). */
export function bootToWallNs(): bigint {
  const boot = nowNs(CLOCK_BOOTTIME);
  const wall = nowNs(CLOCK_REALTIME);
  return wall - boot;
}
