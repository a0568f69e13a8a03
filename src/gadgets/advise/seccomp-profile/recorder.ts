/**
 * advise/seccomp-profile's side of the profile mode: at stop, read the
 * per-cgroup syscall bitmaps (bpf/advise_seccomp.bpf.c) once, take their
 * union and write it as one OCI seccomp profile: everything the workload made
 * is allowed, anything else fails with EPERM. For pods, the same list as a
 * security-profiles-operator SeccompProfile object (seccompProfileObject).
 */
import { containerLookup, type ContainerTable } from '../../../containers/table.ts';
import { SYSCALLS_X86_64 } from '../../../steps/names/syscalls-x86_64.ts';
import type { AdviseStep, ProfileHooks } from '../../../steps/types.ts';
import { dnsSubdomain } from '../../../util/k8s-names.ts';

/** SECCOMP_NR_MAX of bpf/advise_seccomp.h: bits per bitmap */
export const SECCOMP_NR_MAX = 512;

/** cgroups recorded at most (the `syscalls` hash's size): params.cgroups */
export const DEFAULT_CGROUPS = 4096;
export const cgroupsOf = (params: Record<string, unknown>) => (params.cgroups as number | undefined) ?? DEFAULT_CGROUPS;

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

/** The security-profiles-operator API this gadget writes (SeccompProfile, v1beta1). */
export const SPO_API_VERSION = 'security-profiles-operator.x-k8s.io/v1beta1';

/**
 * The security-profiles-operator object (kubectl apply -f; the operator
 * installs it on the nodes for pods to use as a Localhost profile): the OCI
 * profile's fields as its spec.
 */
export interface SeccompProfileObject {
  apiVersion: typeof SPO_API_VERSION;
  kind: 'SeccompProfile';
  metadata: { name: string; namespace?: string; annotations: Record<string, string> };
  spec: Pick<SeccompProfile, 'defaultAction' | 'architectures' | 'syscalls'>;
}

/** The top-level fields of each document kind (what transforms and assertions of the step read). */
export const DOCUMENT_FIELDS = {
  oci: ['defaultAction', 'architectures', 'syscalls'],
  SeccompProfile: ['apiVersion', 'kind', 'metadata', 'spec'],
} as const;
export type DocumentKind = keyof typeof DOCUMENT_FIELDS;

export function seccompProfileObject(profile: SeccompProfile, metadata: { name: string; namespace?: string }): SeccompProfileObject {
  return {
    apiVersion: SPO_API_VERSION,
    kind: 'SeccompProfile',
    metadata: { name: metadata.name, ...(metadata.namespace ? { namespace: metadata.namespace } : {}), annotations: { 'gadget-run/generated-by': 'advise/seccomp-profile' } },
    spec: { defaultAction: profile.defaultAction, architectures: profile.architectures, syscalls: profile.syscalls },
  };
}

/**
 * Whom the SeccompProfile is named after: the pod whose containers made the
 * syscalls (its namespace too), or their common owner when they are several
 * pods of one workload (a Deployment's replicas); otherwise the recipe's name,
 * and the namespace the pods share if they share one.
 */
export function profileObjectMetadata(cgroups: readonly string[], containers: ContainerTable | undefined, recipe: string, node?: string): { name: string; namespace?: string } {
  // a cluster's merged table: the cgroups are those of the row's node
  const rowOf = containerLookup(containers);
  const byCgroup = { get: (id: string) => rowOf.get(id, node) };
  const pods = new Map<string, { namespace: string; pod: string; owner?: string }>();
  for (const id of cgroups) {
    const k = byCgroup.get(id)?.k8s;
    if (k?.namespace && k.pod) pods.set(`${k.namespace}/${k.pod}`, { namespace: k.namespace, pod: k.pod, ...(k.owner ? { owner: k.owner } : {}) });
  }
  const list = [...pods.values()];
  const namespaces = new Set(list.map((p) => p.namespace));
  const namespace = namespaces.size === 1 ? list[0].namespace : undefined;
  const owners = new Set(list.map((p) => p.owner));
  // syscalls of a cgroup outside the pods (the workload's own, a node process) make the profile no single pod's
  const onlyPods = list.length > 0 && cgroups.every((id) => byCgroup.get(id)?.k8s?.pod);
  if (onlyPods && list.length === 1) return { name: dnsSubdomain(list[0].pod, 'pod'), namespace };
  if (onlyPods && namespace && owners.size === 1 && list[0].owner) return { name: dnsSubdomain(list[0].owner.slice(list[0].owner.indexOf('/') + 1), 'workload'), namespace };
  return { name: dnsSubdomain(recipe, 'workload'), ...(namespace && onlyPods ? { namespace } : {}) };
}

/**
 * The step's document (advise generator): the recorded row is the OCI
 * profile plus the cgroups that made the syscalls; params.document chooses
 * the OCI profile itself (default) or the SeccompProfile object.
 */
export function seccompDocuments(rows: Record<string, unknown>[], containers: ContainerTable | undefined, step: AdviseStep): Record<string, unknown>[] {
  return rows.map((row) => {
    const { cgroups, ...rest } = row;
    const profile = rest as SeccompProfile;
    if (documentKind(step.params) === 'oci') return profile;
    // a cluster node's row names its node (src/k8s/agent.ts addNode)
    const node = typeof rest.node === 'string' ? rest.node : undefined;
    return { ...seccompProfileObject(profile, profileObjectMetadata(Array.isArray(cgroups) ? cgroups.map(String) : [], containers, step.recipe, node)) };
  });
}

export const documentKind = (params: Record<string, unknown>): DocumentKind => (params.document === 'SeccompProfile' ? 'SeccompProfile' : 'oci');

export const adviseSeccompHooks: ProfileHooks = {
  beforeLoad(obj, params) {
    obj.setMaxEntries('syscalls', cgroupsOf(params));
  },
  start(obj, params) {
    obj.attachAll();
    return {
      collect() {
        const seen = new Set<number>();
        const cgroups: string[] = [];
        for (const [key, bitmap] of obj.hashMap('syscalls').entries()) {
          const nrs = bitmapNumbers(bitmap);
          for (const nr of nrs) seen.add(nr);
          if (nrs.length) cgroups.push(key.readBigUInt64LE(0).toString());
        }
        const { profile, unnamed } = profileFor(seen);
        const unrecorded = obj.readGlobal('unrecorded_syscalls');
        const dropped = obj.readGlobal('dropped_cgroups');
        const warnings: string[] = [];
        if (unnamed.length) warnings.push(`syscalls ${unnamed.join(', ')} have no name in the x86-64 table (src/steps/names/syscalls-x86_64.ts, from linux-libc-dev): not in the profile, so they will fail with EPERM under it`);
        if (unrecorded) warnings.push(`${unrecorded} syscalls had numbers past ${SECCOMP_NR_MAX - 1} (x32 ABI?) and were not recorded`);
        if (dropped) warnings.push(`more than ${cgroupsOf(params)} cgroups made syscalls: ${dropped} times a cgroup's recording could not start, so the profile lacks what those cgroups made (raise params.cgroups)`);
        // the cgroups name the SeccompProfile's pod at evaluation (seccompDocuments); the OCI document leaves them out
        return { rows: [{ ...profile, cgroups: cgroups.sort() }], lost: dropped, warnings };
      },
    };
  },
};
