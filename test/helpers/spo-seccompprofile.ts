/**
 * The security-profiles-operator's SeccompProfile API (v1beta1) as a
 * CustomResourceDefinition, written for these tests from the API's Go types
 * (api/seccompprofile/v1beta1: SeccompProfileSpec, Syscall, Arg, Arch, Flag)
 * — not the operator's own CRD file, and without its status and printer
 * columns: what the spec may hold, with the enums the API declares
 * (kubebuilder validation markers). Left out: fields whose type changed
 * across the operator's releases and that this gadget never writes
 * (Syscall.errnoRet, SpecBase.disabled), so an object using them fails here. The test cluster has no operator, so
 * registering this lets its API server validate the objects
 * advise/seccomp-profile writes, and the same schema checks them without
 * a cluster (ajv).
 */
const ACTIONS = ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY'];
const ARCHES = [
  'SCMP_ARCH_NATIVE', 'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64',
];
const FLAGS = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'];
const OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];

const str = { type: 'string' };
const uint = { type: 'integer', minimum: 0 };

/** The object's schema (openAPIV3Schema: structural, so also plain JSON Schema for ajv). */
export const SECCOMP_PROFILE_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { type: 'string', enum: ['security-profiles-operator.x-k8s.io/v1beta1'] },
    kind: { type: 'string', enum: ['SeccompProfile'] },
    metadata: { type: 'object' },
    spec: {
      type: 'object',
      required: ['defaultAction'],
      // additionalProperties false: a field the API does not have is an error here, where the API server would prune it silently
      additionalProperties: false,
      properties: {
        baseProfileName: str,
        defaultAction: { type: 'string', enum: ACTIONS },
        architectures: { type: 'array', items: { type: 'string', enum: ARCHES } },
        listenerPath: str,
        listenerMetadata: str,
        flags: { type: 'array', items: { type: 'string', enum: FLAGS } },
        syscalls: {
          type: 'array',
          items: {
            type: 'object',
            required: ['names', 'action'],
            additionalProperties: false,
            properties: {
              names: { type: 'array', minItems: 1, items: str },
              action: { type: 'string', enum: ACTIONS },
              args: {
                type: 'array', maxItems: 6,
                items: { type: 'object', required: ['index', 'op'], additionalProperties: false, properties: { index: uint, value: uint, valueTwo: uint, op: { type: 'string', enum: OPS } } },
              },
            },
          },
        },
      },
    },
  },
};

/** The same as a CRD (apiextensions.k8s.io/v1; the structural schema takes no additionalProperties: false, so it is left out there). */
export function seccompProfileCrd(): Record<string, unknown> {
  const spec = JSON.parse(JSON.stringify(SECCOMP_PROFILE_SCHEMA.properties.spec, (k, v) => (k === 'additionalProperties' ? undefined : v)));
  // the root of a CRD's schema: apiVersion, kind and metadata are the API server's (no enums, nothing required of them)
  const structural = { type: 'object', required: ['spec'], properties: { apiVersion: str, kind: str, metadata: { type: 'object' }, spec } };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'seccompprofiles.security-profiles-operator.x-k8s.io' },
    spec: {
      group: 'security-profiles-operator.x-k8s.io',
      names: { kind: 'SeccompProfile', listKind: 'SeccompProfileList', plural: 'seccompprofiles', singular: 'seccompprofile', shortNames: ['sp'] },
      scope: 'Namespaced',
      versions: [{ name: 'v1beta1', served: true, storage: true, schema: { openAPIV3Schema: structural }, subresources: { status: {} } }],
    },
  };
}
