/**
 * The mode registry. A mode is the workflow a gadget runs in (Inspektor
 * Gadget's GadgetType): stream (events from a ring buffer until stopped),
 * packet (packets from a socket filter or the workload's cgroup, parsed in
 * user space), snapshot (one iterator pass), interval (kernel maps read and
 * cleared every interval: the top gadgets), profile. Each mode owns, in its one file:
 *
 * - `options`: the recipe step keys it adds (buffer, delay, interval, sort,
 *   ...), each with its JSON Schema. src/runner/recipe.ts merges them into the
 *   step schema and refuses a key on a step of another mode, naming the mode.
 * - `plan`: parses and checks those values against the gadget (a sort field
 *   that exists, a buffer that is a power of two) into the mode's own shape.
 *   The runner calls it when the recipe is loaded (problems name file:line);
 *   the mode calls it again in `open` (the values were checked, so it cannot fail).
 * - `ringBytes`: kernel memory its options take, counted against --limit-ring.
 * - `probe`: what the mode needs from the kernel beyond the gadget's hooks.
 * - `open`: load (src/steps/prepare.ts prepareObject, with the mode's
 *   `beforeLoad` settings for the object) and attach, return the session.
 *
 * Adding a mode: write src/steps/modes/<name>.ts with a `Mode` (./mode.ts), add it to
 * `modes` below and its gadgets' definition type to the GadgetDefinition union
 * (src/steps/types.ts), keyed by its name.
 */
import { UnsupportedError } from '../../ebpf/errors.ts';
import { checkHooks, selectVariant, type Support } from '../prepare.ts';
import type { GadgetDefinition, GadgetMode, GadgetOfMode, StepContext, StepSession } from '../types.ts';
import { intervalMode } from './interval.ts';
import { profileMode } from './profile.ts';
import type { Mode } from './mode.ts';
import { packetMode } from './packet.ts';
import { snapshotMode } from './snapshot.ts';
import { streamMode } from './stream.ts';

export const modes = {
  stream: streamMode,
  packet: packetMode,
  snapshot: snapshotMode,
  interval: intervalMode,
  profile: profileMode,
} satisfies { [M in GadgetMode]: Mode<any, GadgetOfMode<M>> };

export function modeOf(def: GadgetDefinition): Mode<unknown> | undefined {
  return Object.hasOwn(modes, def.mode) ? (modes as Record<string, Mode<unknown>>)[def.mode] : undefined;
}

/** Every step key some mode owns, and the modes owning it (a key may be shared: interval and profile could both take `interval`). */
export function modeOptionKeys(): Map<string, GadgetMode[]> {
  const keys = new Map<string, GadgetMode[]>();
  for (const m of Object.values(modes) as Mode<unknown>[]) {
    for (const k of Object.keys(m.options)) keys.set(k, [...(keys.get(k) ?? []), m.name]);
  }
  return keys;
}

/**
 * Why this gadget cannot run here (no `why` when its hooks and its mode's
 * needs are there), and the optional hooks it will do without. Whether its
 * object loads is probeSupport's further question.
 */
export function checkSupport(def: GadgetDefinition): Support {
  const mode = modeOf(def);
  if (!mode) return { why: { kind: 'mode', mode: def.mode }, missingOptional: [] };
  const hooks = checkHooks(def);
  if (hooks.why) return hooks;
  const why = mode.probe?.(def);
  return why ? { why, missingOptional: hooks.missingOptional } : hooks;
}

/**
 * checkSupport, then load the gadget's object from `objectDir` on this kernel
 * (cached: src/ebpf/load-probe.ts): a gadget said to be supported loads.
 */
export async function probeSupport(def: GadgetDefinition, objectDir: string): Promise<Support> {
  const support = checkSupport(def);
  if (support.why) return support;
  return selectVariant(def, objectDir);
}

/** Open a gadget in its mode's shape; it is loaded and attached when this returns. */
export async function openSession(def: GadgetDefinition, ctx: StepContext): Promise<StepSession> {
  const { why } = checkSupport(def);
  if (why) throw new UnsupportedError(def.id, why);
  const notLive = ctx.sink && whyNotLive(def);
  if (notLive) throw new Error(notLive);
  return modeOf(def)!.open(def, ctx);
}

/** Why a live consumer (StepContext.sink) cannot take this gadget's events as they come; undefined: it can. */
export function whyNotLive(def: GadgetDefinition): string | undefined {
  if (modeOf(def)?.live) return undefined;
  const live = (Object.values(modes) as Mode<unknown>[]).filter((m) => m.live).map((m) => m.name);
  const names = live.length > 1 ? `${live.slice(0, -1).join(', ')} and ${live[live.length - 1]}` : live.join('');
  return `${def.id} is a${/^[aeiou]/.test(def.mode) ? 'n' : ''} ${def.mode} gadget: only the events of ${names} gadgets come as they happen`;
}

export { planOrThrow, durationOption, spoolOf, type Mode, type StepOptions, type OptionProblem } from './mode.ts';
