/** The gadget registry, keyed `category/name` as in Inspektor Gadget. */
import { adviseSeccompProfile } from './advise-seccomp-profile.ts';
import { adviseNetworkPolicy } from './advise-network-policy.ts';
import { auditSeccomp } from './audit-seccomp.ts';
import { profileCpu } from './profile-cpu.ts';
import { profileBlockio } from './profile-blockio.ts';
import { snapshotSocket } from './snapshot-socket.ts';
import { snapshotProcess } from './snapshot-process.ts';
import { traceBind } from './trace-bind.ts';
import { traceCapabilities } from './trace-capabilities.ts';
import { traceDns } from './trace-dns.ts';
import { traceSni } from './trace-sni.ts';
import { traceExec } from './trace-exec.ts';
import { traceFsslower } from './trace-fsslower.ts';
import { traceMount } from './trace-mount.ts';
import { traceOomkill } from './trace-oomkill.ts';
import { traceOpen } from './trace-open.ts';
import { traceTcp } from './trace-tcp.ts';
import { traceTcpconnect } from './trace-tcpconnect.ts';
import { traceSignal } from './trace-signal.ts';
import { topFile } from './top-file.ts';
import { topTcp } from './top-tcp.ts';
import { topBlockio } from './top-blockio.ts';
import { traceloop } from './traceloop.ts';
import type { GadgetDefinition } from './types.ts';

export const gadgets = {
  'trace/exec': traceExec,
  'trace/open': traceOpen,
  'trace/signal': traceSignal,
  'snapshot/process': snapshotProcess,
  'trace/bind': traceBind,
  'trace/tcp': traceTcp,
  'trace/tcpconnect': traceTcpconnect,
  'trace/capabilities': traceCapabilities,
  'trace/mount': traceMount,
  'trace/dns': traceDns,
  'trace/sni': traceSni,
  'trace/fsslower': traceFsslower,
  'trace/oomkill': traceOomkill,
  'top/file': topFile,
  'top/tcp': topTcp,
  'top/block-io': topBlockio,
  'profile/cpu': profileCpu,
  'profile/block-io': profileBlockio,
  'snapshot/socket': snapshotSocket,
  'advise/seccomp-profile': adviseSeccompProfile,
  'advise/network-policy': adviseNetworkPolicy,
  traceloop,
  'audit/seccomp': auditSeccomp,
} satisfies Record<string, GadgetDefinition>;

export type GadgetId = keyof typeof gadgets;

export function findGadget(id: string): GadgetDefinition | undefined {
  return Object.hasOwn(gadgets, id) ? (gadgets as Record<string, GadgetDefinition>)[id] : undefined;
}

export { checkSupport, modes, modeOf, openSession, probeSupport } from './modes/index.ts';
export type { GadgetDefinition, StepContext, StepSession, StepOutcome } from './types.ts';
