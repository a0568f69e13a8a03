/**
 * perf events: the software cpu-clock sampling event, one per online CPU,
 * that profile/cpu attaches its BPF program to (bpf_program__attach_perf_event;
 * the link owns the perf fd and closes it on destroy).
 */
import fs from 'node:fs';
import { KernelError, hintFor } from './errors.ts';
import { errno, native } from './libbpf.ts';

const NR_PERF_EVENT_OPEN: Partial<Record<string, number>> = { x64: 298, arm64: 241 };
const PERF_TYPE_SOFTWARE = 1;
const PERF_COUNT_SW_CPU_CLOCK = 0;
const PERF_FLAG_FD_CLOEXEC = 8;
/** PERF_ATTR_SIZE_VER5: every field we set is in it; the kernel zero-extends */
const ATTR_BYTES = 112;
// bits of the flags word at offset 40
const ATTR_FREQ = 1n << 10n;

/** The online CPUs, from /sys/devices/system/cpu/online ("0-1,4"). */
export function onlineCpus(text = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8')): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const [lo, hi = lo] = part.split('-').map(Number);
    for (let c = lo; c <= hi; c++) cpus.push(c);
  }
  return cpus;
}

/**
 * Open a cpu-clock sampling event on `cpu` for every task (pid -1), firing
 * `frequency` times a second; returns the perf fd.
 */
export function openCpuClock(cpu: number, frequency: number): number {
  const nr = NR_PERF_EVENT_OPEN[process.arch];
  if (nr === undefined) throw new Error(`perf_event_open: no syscall number known for ${process.arch}`);
  const attr = Buffer.alloc(ATTR_BYTES);
  attr.writeUInt32LE(PERF_TYPE_SOFTWARE, 0);
  attr.writeUInt32LE(ATTR_BYTES, 4);
  attr.writeBigUInt64LE(BigInt(PERF_COUNT_SW_CPU_CLOCK), 8);
  attr.writeBigUInt64LE(BigInt(frequency), 16); // sample_freq (freq is set)
  attr.writeBigUInt64LE(ATTR_FREQ, 40);
  const fd = Number(native().syscall(nr, 'void *', attr, 'int', -1, 'int', cpu, 'int', -1, 'unsigned long', PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) {
    const e = errno();
    const hint = e === 22 ? `frequency ${frequency} Hz is above kernel.perf_event_max_sample_rate (/proc/sys/kernel/perf_event_max_sample_rate)` : hintFor(e) ?? 'needs CAP_PERFMON (or root)';
    throw new KernelError(`perf_event_open(cpu-clock, cpu ${cpu}, ${frequency} Hz)`, e, hint);
  }
  return fd;
}
