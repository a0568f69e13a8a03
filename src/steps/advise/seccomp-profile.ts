/**
 * advise/seccomp-profile's side of the profile mode: at stop, read the
 * per-cgroup syscall bitmaps (bpf/advise_seccomp.bpf.c) once, take their
 * union and write it as one OCI seccomp profile: everything the workload made
 * is allowed, anything else fails with EPERM. For pods, the same list as a
 * security-profiles-operator SeccompProfile object (seccompProfileObject).
 */
import { SYSCALLS_X86_64 } from '../names/syscalls-x86_64.ts';
import type { ProfileHooks } from '../types.ts';

/** SECCOMP_NR_MAX of bpf/advise_seccomp.h: bits per bitmap */
export const SECCOMP_NR_MAX = 512;

/**
 * Syscalls a profile always allows: the loader (or the runtime) installs the
 * filter and then execs the workload, so execve runs under the profile before
 * the workload's first instruction.
 */
export const ALWAYS_ALLOWED = ['execve'] as const;

/** The OCI (runtime-spec config.linux.seccomp) profile, the subset this gadget writes. */
export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ERRNO';
  architectures: string[];
  syscalls: { names: string[]; action: 'SCMP_ACT_ALLOW' }[];
  [field: string]: unknown;
}

/** The syscall numbers whose bits are set in one bitmap (u64 words, little-endian). */
export function bitmapNumbers(bitmap: Buffer): number[] {
  const nrs: number[] = [];
  for (let word = 0; word * 8 < bitmap.length; word++) {
    const w = bitmap.readBigUInt64LE(word * 8);
    if (w === 0n) continue;
    for (let bit = 0; bit < 64; bit++) if ((w >> BigInt(bit)) & 1n) nrs.push(word * 64 + bit);
  }
  return nrs;
}

/** The profile allowing these x86-64 syscall numbers; numbers the table does not name are returned apart. */
export function profileFor(numbers: Iterable<number>): { profile: SeccompProfile; unnamed: number[] } {
  const names = new Set<string>(ALWAYS_ALLOWED);
  const unnamed: number[] = [];
  for (const nr of numbers) {
    const name = SYSCALLS_X86_64[nr];
    if (name) names.add(name);
    else unnamed.push(nr);
  }
  return {
    profile: {
      defaultAction: 'SCMP_ACT_ERRNO',
      // the x86 family as Docker's default profile lists it; the names are x86-64's
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [{ names: [...names].sort(), action: 'SCMP_ACT_ALLOW' }],
    },
    unnamed: unnamed.sort((a, b) => a - b),
  };
}

/** The security-profiles-operator object carrying `profile` for a pod (kubectl apply -f). */
export function seccompProfileObject(profile: SeccompProfile, pod: { namespace: string; pod: string }): Record<string, unknown> {
  // an object name is a DNS subdomain: the pod's name already is one
  return {
    apiVersion: 'security-profiles-operator.x-k8s.io/v1beta1',
    kind: 'SeccompProfile',
    metadata: { name: pod.pod, namespace: pod.namespace, annotations: { 'gadget-run/generated-by': 'advise/seccomp-profile' } },
    spec: { defaultAction: profile.defaultAction, architectures: profile.architectures, syscalls: profile.syscalls },
  };
}

export const adviseSeccompHooks: ProfileHooks = {
  start(obj) {
    obj.attachAll();
    return {
      collect() {
        const seen = new Set<number>();
        for (const [, bitmap] of obj.hashMap('syscalls').entries()) for (const nr of bitmapNumbers(bitmap)) seen.add(nr);
        const { profile, unnamed } = profileFor(seen);
        const unrecorded = obj.readGlobal('unrecorded_syscalls');
        const dropped = obj.readGlobal('dropped_cgroups');
        const warnings: string[] = [];
        if (unnamed.length) warnings.push(`syscalls ${unnamed.join(', ')} have no name in the x86-64 table (src/steps/names/syscalls-x86_64.ts, from linux-libc-dev): not in the profile, so they will fail with EPERM under it`);
        if (unrecorded) warnings.push(`${unrecorded} syscalls had numbers past ${SECCOMP_NR_MAX - 1} (x32 ABI?) and were not recorded`);
        if (dropped) warnings.push(`${dropped} syscalls of cgroups beyond the map's 4096 were not recorded`);
        return { rows: [profile], lost: dropped, warnings };
      },
    };
  },
};
