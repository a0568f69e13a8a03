/** Running a gadget through openSession the way the runner does, and reading its NDJSON spool. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { bootToWallNs } from '../../src/ebpf/clock.ts';
import { parseFilter } from '../../src/steps/filter.ts';
import { openSession, type GadgetDefinition, type StepContext, type StepOutcome, type StepSession } from '../../src/steps/index.ts';
import { objectDir } from './kernel.ts';
import { spoolOf } from '../../src/steps/modes/mode.ts';

/** A directory removed after the test. */
export function tempDir(t: TestContext, prefix = 'gadget-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A token no other process on the machine will put in a path or an argument. */
export function uniqueToken(label = 'gadget-test'): string {
  return `${label}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

export interface ContextOptions {
  id?: string;
  /** filter text, as a recipe would give it */
  filter?: string;
  params?: Record<string, unknown>;
  cgroup?: StepContext['cgroup'];
  /** the step's mode keys, as a recipe writes them (buffer: 1MiB, interval: 500ms, sort: -wbytes) */
  options?: StepContext['options'];
}

/** A StepContext as the runner builds it, spooling into a fresh temp dir. */
export function stepContext(t: TestContext, opts: ContextOptions = {}): StepContext {
  const id = opts.id ?? 'step';
  return {
    id,
    params: opts.params ?? {},
    filter: parseFilter(opts.filter ?? ''),
    cgroup: opts.cgroup,
    spoolPath: path.join(tempDir(t), `${id}.ndjson`),
    bootToWallNs: bootToWallNs(),
    objectDir: objectDir(),
    options: opts.options ?? {},
    maxBytes: Number.MAX_SAFE_INTEGER,
  };
}

export type Event = Record<string, unknown>;

export function readNdjson(file: string): Event[] {
  const text = fs.readFileSync(file, 'utf8');
  return text.split('\n').filter((l) => l !== '').map((l, i) => {
    try {
      return JSON.parse(l) as Event;
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not JSON: ${l.slice(0, 200)}`, { cause: err });
    }
  });
}

export interface Traced {
  outcome: StepOutcome;
  events: Event[];
}

/** Open a stream gadget, run `trigger` while it is attached, stop it and read what it wrote. */
export async function traceWhile(def: GadgetDefinition, ctx: StepContext, trigger: () => unknown): Promise<Traced> {
  const [traced] = await traceAllWhile([[def, ctx]], trigger);
  return traced;
}

/**
 * Several sessions attached at once around one trigger, so a matching and a
 * non-matching filter see the very same kernel events.
 */
export async function traceAllWhile(steps: [GadgetDefinition, StepContext][], trigger: () => unknown): Promise<Traced[]> {
  const sessions: StepSession[] = [];
  const outcomes: StepOutcome[] = [];
  try {
    for (const [def, ctx] of steps) sessions.push(await openSession(def, ctx));
    for (const s of sessions) s.start();
    await trigger();
  } finally {
    for (const s of sessions) outcomes.push(await s.stop());
  }
  return steps.map(([, ctx], i) => ({ outcome: outcomes[i], events: readNdjson(spoolOf(ctx)) }));
}

/** Open a snapshot gadget, wait for its one pass, stop it and read what it wrote. */
export async function snapshot(def: GadgetDefinition, ctx: StepContext): Promise<Traced> {
  const session = await openSession(def, ctx);
  let outcome: StepOutcome;
  try {
    session.start();
    await session.finished;
  } finally {
    outcome = await session.stop();
  }
  return { outcome, events: readNdjson(spoolOf(ctx)) };
}
