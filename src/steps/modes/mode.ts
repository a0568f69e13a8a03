/** The shape of a mode (see src/steps/modes/index.ts) and the helpers modes share. */
import { parseDuration } from '../duration.ts';
import type { GadgetDefinition, StepContext, StepSession } from '../types.ts';
import type { Reason } from '../../ebpf/reasons.ts';

/** The values of a step's mode keys as the recipe wrote them (schema-valid), e.g. { interval: '2s', sort: '-wbytes' }. */
export type StepOptions = Readonly<Record<string, unknown>>;

/** Reports a problem with one of the step's mode keys; the runner adds file:line:col and the path. */
export type OptionProblem = (key: string, message: string) => void;

/** A mode, planning its keys into `Planned`, for the gadgets of its kind `D` (a member of the GadgetDefinition union). */
export interface Mode<Planned = unknown, D extends GadgetDefinition = GadgetDefinition> {
  readonly name: D['mode'];
  /** one line for `gadget-run gadgets` and docs */
  readonly description: string;
  /** step key → its JSON Schema (may $ref the recipe schema's #/definitions/duration and size) */
  readonly options: Readonly<Record<string, Record<string, unknown>>>;
  /** a step of this mode runs until stopped, so it needs a duration or a run command */
  readonly untilStopped: boolean;
  /** it hands each event to a sink as it comes, so a live consumer (StepContext.sink) can take them instead of a spool */
  readonly live?: true;
  /** the step's options with defaults, checked against the gadget; problems go to `problem` */
  plan(values: StepOptions, def: D, problem: OptionProblem): Planned;
  /** kernel buffer bytes the planned options take (counted against --limit-ring); default 0 */
  ringBytes?(planned: Planned): number;
  /** why the mode cannot run here, beyond the gadget's own hooks (undefined: it can) */
  probe?(def: D): Reason | undefined;
  /** load and attach; ctx.options holds the step's values (plan them with planOrThrow) */
  open(def: D, ctx: StepContext): Promise<StepSession>;
}

/** Plan a step's options where they were checked before (open, tests): a problem here is a bug, so it throws. */
export function planOrThrow<P, D extends GadgetDefinition>(mode: Mode<P, D>, def: D, values: StepOptions): P {
  const problems: string[] = [];
  const planned = mode.plan(values, def, (key, message) => problems.push(`${key}: ${message}`));
  if (problems.length) throw new Error(`${def.id}: bad ${mode.name} options — ${problems.join('; ')}`);
  return planned;
}

/** The spool a mode that is not `live` writes: openSession gave it one (a live sink goes only to live modes). */
export function spoolOf(ctx: StepContext): string {
  if (ctx.spoolPath === undefined) throw new Error(`${ctx.id}: this mode writes a spool and none was given`);
  return ctx.spoolPath;
}

/** A duration option in ms; its range problem (the schema checked the shape) goes to `problem`, and 0 stands in. */
export function durationOption(values: StepOptions, key: string, problem: OptionProblem): number {
  try {
    return parseDuration(values[key] as number | string);
  } catch (err) {
    problem(key, (err as Error).message);
    return 0;
  }
}
