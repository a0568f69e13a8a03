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
import { whyNoBtf, whyNoCpuClock, whyNoIterator, whyNoLibbpf, whyNotRoot, whyNoTracepoint } from '../ebpf/features.ts';
import { probeObjectLoad, programsOn } from '../ebpf/load-probe.ts';
import type { Reason } from '../ebpf/reasons.ts';
import { splitFilter, type Predicate } from './filter.ts';
import type { GadgetDefinition, StepContext } from './types.ts';

/** Whether a gadget can run here: `why` not when it cannot, and the optional hooks it will do without. */
export interface Support {
  why?: Reason;
  missingOptional: string[];
}

/**
 * Why this gadget's hooks cannot run here (undefined when they can), and the
 * optional hooks it will do without. What its mode needs besides is the
 * mode's probe (src/steps/modes/index.ts checkSupport has both).
 */
export function checkHooks(def: GadgetDefinition): Support {
  const base = whyNoLibbpf() ?? whyNotRoot() ?? whyNoBtf();
  if (base) return { why: base, missingOptional: [] };
  const missingOptional: string[] = [];
  let haveTracepoint = false;
  for (const r of def.requires) {
    if ('iterator' in r || 'perfEvent' in r) {
      const why = 'iterator' in r ? whyNoIterator(r.iterator) : whyNoCpuClock();
      if (why) return { why, missingOptional };
    } else {
      const why = whyNoTracepoint(r.tracepoint);
      if (!why) haveTracepoint = true;
      else if (r.optional && why.kind === 'tracepoint') missingOptional.push(r.tracepoint);
      else return { why, missingOptional };
    }
  }
  if (def.requires.some((r) => 'tracepoint' in r) && !haveTracepoint) {
    return { why: { kind: 'no-tracepoint', names: missingOptional }, missingOptional };
  }
  return { missingOptional };
}

/**
 * Why the gadget's object does not load on this kernel, if it does not
 * (src/ebpf/load-probe.ts: loaded once per kernel and object, then cached).
 * Call it once the hooks are known to be there.
 */
export async function checkLoads(def: GadgetDefinition, objectDir: string, missingOptional: readonly string[]): Promise<Reason | undefined> {
  const file = path.join(objectDir, def.object);
  if (!fs.existsSync(file)) return { kind: 'no-object', object: def.object, dir: objectDir };
  return (await probeObjectLoad(file, missingOptional)).why;
}

export interface Prepared {
  obj: BpfObject;
  /** predicates left for user space */
  userFilter: Predicate[];
  warnings: string[];
  /** keeps the container set when the step has a container scope or watches the whole node; the session stops it */
  containers?: ContainerTracker;
}

/**
 * Open and load the gadget's object with the step's filters and params as
 * constants; `beforeLoad` is the mode's say on the object (map sizes).
 */
export async function prepareObject(def: GadgetDefinition, ctx: StepContext, beforeLoad?: (obj: BpfObject) => void): Promise<Prepared> {
  const { why, missingOptional } = checkHooks(def);
  if (why) throw new UnsupportedError(def.id, why);
  const wontLoad = await checkLoads(def, ctx.objectDir, missingOptional);
  // a missing object is a broken install, not this kernel's doing: BpfObject.open fails the step, saying how to build it
  if (wontLoad && wontLoad.kind !== 'no-object') throw new UnsupportedError(def.id, wontLoad);

  const { constants: filterConstants, user } = splitFilter(ctx.filter, def);
  const constants: Record<string, ConstantValue> = { ...filterConstants, ...def.constants?.(ctx.params) };
  // never trace ourselves, unless a pid filter asks for exactly us
  if (constants.targ_tgid !== process.pid) constants.targ_exclude_tgid = process.pid;
  if (ctx.cgroup) {
    constants.targ_cgroup_id = ctx.cgroup.id;
    constants.targ_cgroup_level = ctx.cgroup.level;
  }

  const plan: LoadPlan = { def, ctx, file: path.join(ctx.objectDir, def.object), constants, scope: scopeConstants(ctx.containers, !!ctx.cgroup), missingOptional, beforeLoad };
  // the full BTF: the kernel's own (undefined: libbpf finds it), or the --btf file, or a btfgen folder's
  const full = fullCoreBtf();
  const coreBtf = coreBtfFor(plan.file) ?? full;
  try {
    return { ...(await openAndLoad(plan, coreBtf)), userFilter: user };
  } catch (err) {
    if (coreBtf === full || !(err instanceof KernelError)) throw err;
    // a minimized BTF that libbpf refuses (or that relocates wrong) must not cost the run: the full BTF decides
    discardCoreBtf(coreBtf!);
    return { ...(await openAndLoad(plan, full)), userFilter: user };
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
  beforeLoad?: (obj: BpfObject) => void;
}

/** Open, configure and load; `coreBtf`: the BTF to relocate against (core-btf.ts, kernel-btf.ts), undefined for the kernel's own. */
async function openAndLoad({ def, ctx, file, scope, missingOptional, beforeLoad, ...plan }: LoadPlan, coreBtf: string | undefined): Promise<Omit<Prepared, 'userFilter'>> {
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
