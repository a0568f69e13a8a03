/**
 * The gadget registry, keyed `category/name` as in Inspektor Gadget: the one
 * place the engine meets the catalogue (src/gadgets/<category>/<name>.ts).
 */
import { adviseSeccompProfile } from '../gadgets/advise/seccomp-profile.ts';
import { adviseNetworkPolicy } from '../gadgets/advise/network-policy.ts';
import { auditSeccomp } from '../gadgets/audit/seccomp.ts';
import { auditEgress } from '../gadgets/audit/egress.ts';
import { adviseEgress } from '../gadgets/advise/egress.ts';
import { profileCpu } from '../gadgets/profile/cpu.ts';
import { profileBlockio } from '../gadgets/profile/block-io.ts';
import { snapshotSocket } from '../gadgets/snapshot/socket.ts';
import { snapshotProcess } from '../gadgets/snapshot/process.ts';
import { traceBind } from '../gadgets/trace/bind.ts';
import { traceCapabilities } from '../gadgets/trace/capabilities.ts';
import { traceDns } from '../gadgets/trace/dns.ts';
import { traceSni } from '../gadgets/trace/sni.ts';
import { traceExec } from '../gadgets/trace/exec.ts';
import { traceFsslower } from '../gadgets/trace/fsslower.ts';
import { traceMount } from '../gadgets/trace/mount.ts';
import { traceOomkill } from '../gadgets/trace/oomkill.ts';
import { traceOpen } from '../gadgets/trace/open.ts';
import { traceTcp } from '../gadgets/trace/tcp.ts';
import { traceTcpconnect } from '../gadgets/trace/tcpconnect.ts';
import { traceSignal } from '../gadgets/trace/signal.ts';
import { topFile } from '../gadgets/top/file.ts';
import { topTcp } from '../gadgets/top/tcp.ts';
import { topBlockio } from '../gadgets/top/block-io.ts';
import { traceloop } from '../gadgets/traceloop.ts';
import { setKnownGadgets } from './hooks.ts';
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
  'audit/egress': auditEgress,
  'advise/egress': adviseEgress,
} satisfies Record<string, GadgetDefinition>;

// GADGET_RUN_VARIANT may pin these only
setKnownGadgets(Object.keys(gadgets));

export function findGadget(id: string): GadgetDefinition | undefined {
  return Object.hasOwn(gadgets, id) ? (gadgets as Record<string, GadgetDefinition>)[id] : undefined;
}

export { checkSupport, modes, modeOf, openSession, probeSupport } from './modes/index.ts';
export type { GadgetDefinition, StepContext, StepSession, StepOutcome } from './types.ts';
