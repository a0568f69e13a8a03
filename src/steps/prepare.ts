/**
 * What every mode does before its own work: probe the hooks, open the
 * object, set filters and options as constants, leave out programs whose
 * optional hook is missing, load.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BpfObject, type ConstantValue } from '../ebpf/object.ts';
import { coreBtfFor, discardCoreBtf } from '../ebpf/core-btf.ts';
import { fullCoreBtf } from '../ebpf/kernel-btf.ts';
import { KernelError, UnsupportedError } from '../ebpf/errors.ts';
import { CONTAINER_PROGRAMS, ContainerTracker, scopeConstants } from '../containers/selection.ts';
import { whyNoBtf, whyNoBtfFunc, whyNoCpuClock, whyNoIterator, whyNoKprobe, whyNoLibbpf, whyNotRoot, whyNoTracepoint } from '../ebpf/features.ts';
import { probeObjectLoad, programsOn } from '../ebpf/load-probe.ts';
import type { Reason } from '../ebpf/reasons.ts';
import { splitFilter, type Predicate } from './filter.ts';
import { pinnedVariant, variantsOf } from './hooks.ts';
import type { GadgetDefinition, Requirement, StepContext } from './types.ts';

/** The variant a step uses: its name, its object, and the programs of other variants it leaves out. */
export interface ChosenVariant {
  name: string;
  object: string;
  leaveOut: string[];
}

/** Whether a gadget can run here: `why` not when it cannot, the variant it uses, and the optional hooks it will do without. */
export interface Support {
  why?: Reason;
  missingOptional: string[];
  variant?: ChosenVariant;
}

function whyNot(r: Requirement): Reason | undefined {
  if ('iterator' in r) return whyNoIterator(r.iterator);
  if ('perfEvent' in r) return whyNoCpuClock();
  if ('kprobe' in r) return whyNoKprobe(r.kprobe);
  if ('fentry' in r) return whyNoBtfFunc(r.fentry, 'fentry');
  if ('kfunc' in r) return whyNoBtfFunc(r.kfunc, 'kfunc');
  // its program type and attach type: the load probe loads and verifies it
  if ('program' in r) return undefined;
  return whyNoTracepoint(r.tracepoint);
}

/** Whether one set of hooks is here: `why` not, or the optional tracepoints missing. */
function checkRequirements(requires: readonly Requirement[]): { why?: Reason; missingOptional: string[] } {
  const missingOptional: string[] = [];
  let haveTracepoint = false;
  for (const r of requires) {
    const why = whyNot(r);
    if ('tracepoint' in r) {
      if (!why) haveTracepoint = true;
      else if (r.optional && why.kind === 'tracepoint') missingOptional.push(r.tracepoint);
      else return { why, missingOptional };
    } else if (why) {
      return { why, missingOptional };
    }
  }
  if (requires.some((r) => 'tracepoint' in r) && !haveTracepoint) {
    return { why: { kind: 'no-tracepoint', names: missingOptional }, missingOptional };
  }
  return { missingOptional };
}

/** Each variant whose hooks are here, in order, or why none is (each one's reason when there are several). */
function hookCandidates(def: GadgetDefinition): { candidates: Support[]; tried: { variant: string; why: Reason }[] } {
  const base = whyNoLibbpf() ?? whyNotRoot() ?? whyNoBtf();
  const variants = variantsOf(def);
  // a pinned variant is the only candidate: the others' programs are left out as ever
  const pinned = pinnedVariant(def);
  if (base) return { candidates: [], tried: [{ variant: (pinned ?? variants[0]).name, why: base }] };
  const candidates: Support[] = [];
  const tried: { variant: string; why: Reason }[] = [];
  for (const v of pinned ? [pinned] : variants) {
    const { why, missingOptional } = checkRequirements([...def.requires, ...v.requires]);
    if (why) {
      tried.push({ variant: v.name, why });
      continue;
    }
    const others = new Set(variants.filter((o) => o !== v).flatMap((o) => o.programs));
    const leaveOut = [...others].filter((p) => !v.programs.includes(p));
    candidates.push({ missingOptional, variant: { name: v.name, object: v.object ?? def.object, leaveOut } });
  }
  return { candidates, tried };
}

/** The reason a gadget cannot run: its one variant's own, or every variant's. */
function noVariant(def: GadgetDefinition, tried: { variant: string; why: Reason }[]): Reason {
  return tried.length === 1 || !def.variants || def.variants.length < 2 ? tried[0].why : { kind: 'variants', tried };
}

/**
 * Why this gadget's hooks cannot run here (undefined when they can), the
 * first variant whose hooks are here, and the optional hooks it will do
 * without. Whether that variant's programs load is selectVariant's question;
 * what the gadget's mode needs besides is the mode's probe
 * (src/steps/modes/index.ts checkSupport has both).
 */
export function checkHooks(def: GadgetDefinition): Support {
  const { candidates, tried } = hookCandidates(def);
  return candidates[0] ?? { why: noVariant(def, tried), missingOptional: [] };
}

/**
 * The variant this gadget uses on this kernel: the first whose hooks are
 * here and whose programs load and verify (src/ebpf/load-probe.ts: loaded
 * once per kernel and object, then cached), or why none does.
 */
export async function selectVariant(def: GadgetDefinition, objectDir: string): Promise<Support> {
  const { candidates, tried } = hookCandidates(def);
  for (const c of candidates) {
    const v = c.variant!;
    const file = path.join(objectDir, v.object);
    if (!fs.existsSync(file)) return { ...c, why: { kind: 'no-object', object: v.object, dir: objectDir } };
    const { why } = await probeObjectLoad(file, c.missingOptional, v.leaveOut);
    if (!why) return c;
    tried.push({ variant: v.name, why });
  }
  // in order of preference, whichever step said no
  const order = variantsOf(def).map((v) => v.name);
  tried.sort((a, b) => order.indexOf(a.variant) - order.indexOf(b.variant));
  return { why: noVariant(def, tried), missingOptional: [] };
}

export interface Prepared {
  obj: BpfObject;
  /** predicates left for user space */
  userFilter: Predicate[];
  warnings: string[];
  /** the hook variant loaded (GadgetVariant.name) */
  variant: string;
  /** keeps the container set when the step has a container scope or watches the whole node; the session stops it */
  containers?: ContainerTracker;
}

/**
 * Open and load the gadget's object with the step's filters and params as
 * constants; `beforeLoad` is the mode's say on the object (map sizes).
 */
export async function prepareObject(def: GadgetDefinition, ctx: StepContext, beforeLoad?: (obj: BpfObject) => void): Promise<Prepared> {
  const { why, missingOptional, variant } = await selectVariant(def, ctx.objectDir);
  // a missing object is a broken install, not this kernel's doing: BpfObject.open fails the step, saying how to build it
  if (why && (why.kind !== 'no-object' || !variant)) throw new UnsupportedError(def.id, why);

  const { constants: filterConstants, user } = splitFilter(ctx.filter, def);
  const constants: Record<string, ConstantValue> = { ...filterConstants, ...def.constants?.(ctx.params) };
  // never trace ourselves, unless a pid filter asks for exactly us
  if (constants.targ_tgid !== process.pid) constants.targ_exclude_tgid = process.pid;
  if (ctx.cgroup) {
    constants.targ_cgroup_id = ctx.cgroup.id;
    constants.targ_cgroup_level = ctx.cgroup.level;
  }

  const plan: LoadPlan = { def, ctx, file: path.join(ctx.objectDir, variant!.object), constants, scope: scopeConstants(ctx.containers, !!ctx.cgroup), missingOptional, leaveOut: variant!.leaveOut, beforeLoad };
  // the full BTF: the kernel's own (undefined: libbpf finds it), or the --btf file, or a btfgen folder's
  const full = fullCoreBtf();
  const coreBtf = coreBtfFor(plan.file) ?? full;
  try {
    return { ...(await openAndLoad(plan, coreBtf)), userFilter: user, variant: variant!.name };
  } catch (err) {
    if (coreBtf === full || !(err instanceof KernelError)) throw err;
    // a minimized BTF that libbpf refuses (or that relocates wrong) must not cost the run: the full BTF decides
    discardCoreBtf(coreBtf!);
    return { ...(await openAndLoad(plan, full)), userFilter: user, variant: variant!.name };
  }
}

/** What openAndLoad needs, so that a load can be tried again from the start. */
interface LoadPlan {
  def: GadgetDefinition;
  ctx: StepContext;
  file: string;
  /** the filter's and params' constants; the container scope's are added when the object has a container set */
  constants: Record<string, ConstantValue>;
  scope: ReturnType<typeof scopeConstants>;
  missingOptional: string[];
  /** the programs of the variants not chosen */
  leaveOut: string[];
  beforeLoad?: (obj: BpfObject) => void;
}

/** Open, configure and load; `coreBtf`: the BTF to relocate against (core-btf.ts, kernel-btf.ts), undefined for the kernel's own. */
async function openAndLoad({ def, ctx, file, scope, missingOptional, leaveOut, beforeLoad, ...plan }: LoadPlan, coreBtf: string | undefined): Promise<Omit<Prepared, 'userFilter' | 'variant'>> {
  const constants = { ...plan.constants };
  const obj = BpfObject.open(file, { coreBtf });
  const hasContainerSet = obj.programs().some((p) => p.name === CONTAINER_PROGRAMS[0]);
  if (ctx.containers && !hasContainerSet) {
    obj.close();
    throw new Error(`${def.id}: ${def.object} has no container set (bpf/include/containers.h); the step cannot be scoped to containers`);
  }
  if (hasContainerSet) Object.assign(constants, scope.constants);
  const warnings: string[] = [];
  let containers: ContainerTracker | undefined;
  try {
    // an object pays for container tracking only when its step has a container scope or watches the whole node
    for (const p of obj.programs().filter((p) => CONTAINER_PROGRAMS.includes(p.name) && !scope.programs.includes(p.name))) {
      obj.disableProgram(p.name);
    }
    for (const name of leaveOut) obj.disableProgram(name);
    for (const p of programsOn(obj.programs(), missingOptional)) {
      obj.disableProgram(p.name);
      warnings.push(`program ${p.name} left out: tracepoint ${p.section.slice('tracepoint/'.length)} does not exist on this kernel`);
    }
    obj.setConstants(constants);
    beforeLoad?.(obj);
    await obj.load();
    if (hasContainerSet && scope.programs.length) containers = new ContainerTracker(obj.hashMap('gadget_containers'), ctx.containers);
  } catch (err) {
    obj.close();
    throw err;
  }
  return { obj, warnings, containers };
}
