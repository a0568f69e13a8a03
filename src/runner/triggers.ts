/**
 * Triggered steps while a run captures: the events of a trigger's source step
 * are read as its spool is flushed (a tee on its sink: no file is re-read), a
 * matching `start_on` event opens an instance of the triggered step (lazily:
 * loaded and attached at the trigger, scoped by the event's fields), per
 * distinct `for_each` value up to `max_instances`, and a `stop_on` event stops
 * it. Each instance spools on its own; when capture ends their spools are
 * joined into the step's and the summary records every instance.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cgroup2Mount } from '../containers/discovery.ts';
import type { ContainerInfo } from '../containers/enrichment.ts';
import { containerKey, type ContainerKey } from '../containers/table.ts';
import { compileObjectFilter, formatFilter, type Predicate } from '../steps/filter.ts';
import type { GateSink } from '../steps/sink.ts';
import type { StepOutcome, StepSession } from '../steps/types.ts';
import type { PlannedStep } from './recipe.ts';
import type { InstanceEnd, InstanceRecord, StepStatus } from './summary.ts';
import { modeOf } from '../steps/index.ts';
import { CGROUP_SCOPE, type TriggerOn, type TriggerPlan } from './trigger-plan.ts';

/** Opens an instance of a step: its id names its spool; filter and cgroup are the step's narrowed by the trigger. */
export type OpenInstance = (
  step: PlannedStep,
  id: string,
  narrow: { filter: Predicate[]; cgroup?: { id: bigint; level: number }; maxBytes: number; gated?: boolean },
) => Promise<{ session: StepSession; gate?: GateSink }>;

/** How long a triggered step that finishes by itself (a snapshot) may take once the run has ended. */
const FINISH_AT_END_MS = 5000;

/** A session loaded and attached before its trigger, writing nothing until its gate opens. */
interface Preloaded {
  id: string;
  session: StepSession;
  gate: GateSink;
  startedAt: string;
}

interface Instance {
  id: string;
  /** its session was preloaded: attached before the trigger (record.startedAt says when its gate opened) */
  preloaded?: boolean;
  record: InstanceRecord;
  stop: (why: InstanceEnd) => void;
  done: Promise<void>;
  outcome?: StepOutcome;
}

interface Triggered {
  plan: PlannedStep;
  trigger: TriggerPlan;
  keys: Set<string>;
  instances: Instance[];
  /** distinct for_each values past max_instances */
  suppressed: number;
  /** start events with no value for a container for_each (not a container's, or its container lacks the field) */
  unkeyed: number;
  /** why it will not start (its gadget cannot run here): set before the run */
  unsupported?: string;
  /** attach: preload, until its first trigger takes it */
  preloaded?: Preloaded;
}

/** What a triggered step captured, for its meta. */
export interface TriggeredResult {
  status: StepStatus;
  reason?: string;
  events: number;
  lost: number;
  truncated?: number;
  durationMs: number;
  warnings: string[];
  instances: InstanceRecord[];
  suppressed?: number;
  containers: NonNullable<StepOutcome['containers']>;
}

interface Listener {
  test: (e: Record<string, unknown>) => boolean;
  fire: (e: Record<string, unknown>) => void;
}

export class Triggers {
  private readonly triggered = new Map<string, Triggered>();
  private readonly listeners = new Map<string, Listener[]>();
  private readonly stopRequests = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private closed = false;

  constructor(
    steps: PlannedStep[],
    private readonly deps: {
      open: OpenInstance;
      spoolPath: (id: string) => string;
      /** resolves on Ctrl-C/SIGTERM or a failed capture: every instance stops, no new one starts */
      halted: Promise<'signal' | 'error'>;
      log: (line: string) => void;
      /** the node's container by cgroup id, for a for_each on a container field (liveContainers) */
      container?: (cgroupId: string) => ContainerInfo | undefined;
    },
  ) {
    const fields = new Map(steps.map((s) => [s.spec.id, s.def.fields]));
    for (const step of steps) {
      const trigger = step.trigger;
      if (!trigger) continue;
      const id = step.spec.id;
      if (trigger.start) {
        const t: Triggered = { plan: step, trigger, keys: new Set(), instances: [], suppressed: 0, unkeyed: 0 };
        this.triggered.set(id, t);
        this.listen(trigger.start, fields, (e) => this.start(t, e));
      }
      if (trigger.stop) {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        this.stopRequests.set(id, { promise, resolve });
        this.listen(trigger.stop, fields, () => {
          resolve();
          for (const i of this.triggered.get(id)?.instances ?? []) i.stop('stop_on');
        });
      }
    }
    void deps.halted.then((why) => this.halt(why));
  }

  /** Whether a step starts at a trigger rather than with the run. */
  isTriggered(id: string): boolean {
    return this.triggered.has(id);
  }

  /** The step's gadget cannot run here: its trigger is not armed, and the step says why. */
  disarm(id: string, reason: string): void {
    const t = this.triggered.get(id);
    if (t) t.unsupported = reason;
  }

  /**
   * attach: preload: load and attach each such step's first instance now; it
   * writes nothing until its trigger opens its gate. A step that cannot be
   * preloaded is opened at its trigger instead (and says why in its warnings).
   */
  async preload(): Promise<void> {
    await Promise.all([...this.triggered.values()].filter((t) => t.trigger.preload && !t.unsupported).map(async (t) => {
      const id = `${t.plan.spec.id}__1`;
      try {
        const { session, gate } = await this.deps.open(t.plan, id, { filter: t.plan.filter, maxBytes: this.instanceBytes(t), gated: true });
        session.start();
        t.preloaded = { id, session, gate: gate!, startedAt: new Date().toISOString() };
      } catch (err) {
        this.deps.log(`step ${t.plan.spec.id}: could not preload (${(err as Error).message}); it opens at its trigger`);
      }
    }));
  }

  private instanceBytes(t: Triggered): number {
    return Math.floor(t.plan.maxBytes / (t.trigger.forEach === undefined ? 1 : t.trigger.maxInstances));
  }

  /** Resolves when a step that started with the run meets its stop_on event (never without one). */
  stopRequested(id: string): Promise<void> | undefined {
    return this.stopRequests.get(id)?.promise;
  }

  /** What a source step's sink hands over as it flushes (whole NDJSON lines), or undefined when nothing triggers on it. */
  tee(sourceId: string): ((lines: Buffer) => void) | undefined {
    const listeners = this.listeners.get(sourceId);
    if (!listeners) return undefined;
    return (lines) => {
      if (this.closed) return;
      for (const line of lines.toString('utf8').split('\n')) {
        if (!line) continue;
        let e: Record<string, unknown>;
        try {
          e = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // the codec writes JSON; a line it did not is not an event
        }
        for (const l of listeners) if (l.test(e)) l.fire(e);
      }
    };
  }

  private listen(on: TriggerOn, fields: ReadonlyMap<string, PlannedStep['def']['fields']>, fire: (e: Record<string, unknown>) => void): void {
    const list = this.listeners.get(on.step) ?? [];
    list.push({ test: compileObjectFilter(on.filter, fields.get(on.step) ?? []), fire });
    this.listeners.set(on.step, list);
  }

  private start(t: Triggered, e: Record<string, unknown>): void {
    if (this.closed || t.unsupported) return;
    const keyed = this.keyOf(t, e);
    if (!keyed) return;
    const { key } = keyed;
    if (t.keys.has(key)) return;
    t.keys.add(key);
    if (t.instances.length >= (t.trigger.forEach === undefined ? 1 : t.trigger.maxInstances)) {
      if (t.suppressed++ === 0) this.deps.log(`step ${t.plan.spec.id}: ${t.trigger.forEach}=${key} and later values are past max_instances (${t.trigger.maxInstances}): not started, counted`);
      return;
    }
    const n = t.instances.length + 1;
    // a preloaded session spools under the first instance's name
    const id = `${t.plan.spec.id}__${n}`;
    const fields: Record<string, unknown> = {};
    for (const f of t.trigger.uses) fields[f] = e[f];
    Object.assign(fields, keyed.fields);
    const at = typeof e.timestamp === 'string' ? e.timestamp : new Date().toISOString();
    const record: InstanceRecord = {
      ...(t.trigger.forEach !== undefined ? { key } : {}),
      triggered_by: { step: t.trigger.start!.step, fields, at },
      status: 'ok',
      events: 0,
      lost: 0,
    };
    let stop!: (why: InstanceEnd) => void;
    const stopped = new Promise<InstanceEnd>((r) => (stop = r));
    const instance: Instance = { id, record, stop, done: Promise.resolve() };
    t.instances.push(instance);
    instance.done = this.runInstance(t, instance, e, stopped);
  }

  /** The start event's for_each key ('' without for_each); undefined, counted, when a container key has no value for it. */
  private keyOf(t: Triggered, e: Record<string, unknown>): { key: string; fields?: Record<string, string> } | undefined {
    const field = t.trigger.forEach;
    if (field === undefined) return { key: '' };
    if (!t.trigger.forEachContainer) return { key: valueText(e[field]) };
    const c = e.cgroup_id === undefined || e.cgroup_id === null ? undefined : this.deps.container?.(String(e.cgroup_id));
    const keyed = c && containerKey(c, field as ContainerKey);
    if (keyed) return keyed;
    if (t.unkeyed++ === 0) this.deps.log(`step ${t.plan.spec.id}: a start event of cgroup ${String(e.cgroup_id)} has no ${field} (${c ? `its container ${c.id.slice(0, 12)} has none` : 'not a container'}): no instance for it, such events counted`);
    return undefined;
  }

  private async runInstance(t: Triggered, inst: Instance, e: Record<string, unknown>, stopped: Promise<InstanceEnd>): Promise<void> {
    const seen = performance.now();
    const { record } = inst;
    const narrow = { filter: [...t.plan.filter], maxBytes: this.instanceBytes(t) } as Parameters<OpenInstance>[2];
    let session: StepSession;
    const preloaded = t.preloaded;
    t.preloaded = undefined;
    try {
      const scope: Predicate[] = [];
      for (const [mine, theirs] of t.trigger.scope) {
        const value = e[theirs];
        if (value === undefined || value === null) throw new Error(`the trigger event has no ${theirs} to scope ${mine} by`);
        if (mine === CGROUP_SCOPE) narrow.cgroup = cgroupById(BigInt(value as number | string));
        else scope.push({ field: mine, op: '==', value: valueText(value), column: 0 });
      }
      if (preloaded) {
        // attached already: from the trigger's moment on, the scope's events go to the spool
        const inScope = compileObjectFilter(scope, t.plan.def.fields);
        const since = inst.record.triggered_by.at;
        // rows without a timestamp (an interval's) pass from the gate's opening on
        preloaded.gate.open((line) => (typeof line.timestamp !== 'string' || line.timestamp >= since) && inScope(line));
        session = preloaded.session;
        inst.preloaded = true;
      } else {
        narrow.filter.push(...scope);
        session = (await this.deps.open(t.plan, inst.id, narrow)).session;
      }
    } catch (err) {
      if (preloaded) await preloaded.session.stop().catch(() => undefined);
      record.status = 'failed';
      record.reason = (err as Error).message;
      this.deps.log(`step ${t.plan.spec.id} (instance ${inst.id}): failed to start: ${record.reason}`);
      return;
    }
    if (!preloaded) session.start();
    record.attach = preloaded ? 'preload' : 'lazy';
    const started = performance.now();
    record.attachMs = Math.round(started - seen);
    record.startedAt = new Date().toISOString();
    this.deps.log(`step ${t.plan.spec.id} started by ${t.trigger.start!.step} (${Object.entries(record.triggered_by.fields).map(([k, v]) => `${k}=${valueText(v)}`).join(' ') || 'an event'}) in ${record.attachMs} ms`);
    if (this.closed) inst.stop('run_end');
    let timer: NodeJS.Timeout | undefined;
    const ends: Promise<InstanceEnd>[] = [stopped, session.finished.then(() => 'snapshot' as const, () => 'error' as const)];
    if (t.plan.durationMs !== undefined) ends.push(new Promise((r) => (timer = setTimeout(() => r('duration'), t.plan.durationMs))));
    let why = await Promise.race(ends);
    clearTimeout(timer);
    // a step that finishes by itself (a snapshot) and was started just before the run ended still gets its moment
    if (why === 'run_end' && !modeOf(t.plan.def)?.untilStopped) {
      why = await Promise.race([session.finished.then(() => 'snapshot' as const, () => 'error' as const), new Promise<InstanceEnd>((r) => setTimeout(() => r('run_end'), FINISH_AT_END_MS).unref())]);
    }
    record.ended_by = why;
    record.stoppedAt = new Date().toISOString();
    try {
      inst.outcome = await session.stop();
      record.status = why === 'signal' ? 'interrupted' : why === 'error' ? 'failed' : 'ok';
      record.events = inst.outcome.events;
      record.lost = inst.outcome.lost;
      if (inst.outcome.warnings.length) record.warnings = inst.outcome.warnings;
      if ((inst.outcome.truncated ?? 0) > 0) {
        record.status = 'truncated';
        record.truncated = inst.outcome.truncated;
      }
      if (inst.outcome.notTaken) {
        record.status = 'not_run';
        record.reason = 'the snapshot was not taken: the instance was stopped before its delay';
      }
    } catch (err) {
      record.status = 'failed';
      record.reason = (err as Error).message;
    }
  }

  private halt(why: 'signal' | 'error'): void {
    this.closed = true;
    for (const t of this.triggered.values()) {
      for (const i of t.instances) i.stop(why);
      void this.unload(t);
    }
  }

  /** The run's untriggered steps have stopped: stop every instance, start no more, wait for them to flush. */
  async finish(): Promise<void> {
    this.closed = true;
    for (const t of this.triggered.values()) for (const i of t.instances) i.stop('run_end');
    await Promise.all([...this.triggered.values()].flatMap((t) => [...t.instances.map((i) => i.done), this.unload(t)]));
  }

  /** A preloaded session no trigger took: detached, its empty spool removed. */
  private async unload(t: Triggered): Promise<void> {
    const p = t.preloaded;
    if (!p) return;
    t.preloaded = undefined;
    try {
      await p.session.stop();
    } catch (err) {
      this.deps.log(`step ${t.plan.spec.id}: stopping its preloaded session: ${(err as Error).message}`);
    }
    fs.rmSync(this.deps.spoolPath(p.id), { force: true });
  }

  /**
   * A triggered step's result: its instances' spools joined into the step's
   * (in instance order) and removed; its status, counts and instances.
   */
  collect(id: string): TriggeredResult | undefined {
    const t = this.triggered.get(id);
    if (!t) return undefined;
    const spool = this.deps.spoolPath(id);
    const records = t.instances.map((i) => i.record);
    if (t.instances.some((i) => i.outcome)) joinSpools(t.instances.filter((i) => fs.existsSync(this.deps.spoolPath(i.id))).map((i) => this.deps.spoolPath(i.id)), spool);
    const warnings = records.flatMap((r, n) => (r.warnings ?? []).map((w) => `instance ${n + 1}: ${w}`));
    if (t.unkeyed) warnings.push(`${t.unkeyed} start event${t.unkeyed === 1 ? '' : 's'} of ${t.trigger.start!.step} had no ${t.trigger.forEach} (from a process in no container, or a container without it: pod, namespace and container come from Kubernetes) and started no instance`);
    if (t.suppressed) warnings.push(`${t.suppressed} more distinct value${t.suppressed === 1 ? '' : 's'} of ${t.trigger.forEach} came past max_instances (${t.trigger.maxInstances}) and were not traced; raise max_instances or narrow the start_on filter`);
    const sum = (f: (r: InstanceRecord) => number) => records.reduce((n, r) => n + f(r), 0);
    const truncated = sum((r) => r.truncated ?? 0);
    const span = (r: InstanceRecord) => (r.startedAt && r.stoppedAt ? Date.parse(r.stoppedAt) - Date.parse(r.startedAt) : 0);
    const result: TriggeredResult = {
      status: 'ok',
      events: sum((r) => r.events),
      lost: sum((r) => r.lost),
      ...(truncated ? { truncated } : {}),
      durationMs: sum(span),
      warnings,
      instances: records,
      ...(t.suppressed ? { suppressed: t.suppressed } : {}),
      containers: t.instances.flatMap((i) => i.outcome?.containers ?? []),
    };
    const failed = records.filter((r) => r.status === 'failed' || r.status === 'not_run');
    if (t.unsupported) {
      Object.assign(result, { status: 'unsupported', reason: t.unsupported });
    } else if (!records.length) {
      const on = t.trigger.start!;
      const why = t.unkeyed ? `${t.unkeyed} event${t.unkeyed === 1 ? '' : 's'} of step ${on.step} matched but had no ${t.trigger.forEach} to key an instance by` : `no event of step ${on.step}${on.filter.length ? ` matched ${formatFilter(on.filter)}` : ''}`;
      Object.assign(result, { status: 'not_triggered', reason: `its trigger never came: ${why}` });
    } else if (failed.length) {
      Object.assign(result, { status: 'failed', reason: failed.map((r) => `instance ${records.indexOf(r) + 1}${r.key !== undefined ? ` (${t.trigger.forEach}=${r.key})` : ''}: ${r.reason}`).join('; ') });
    } else if (truncated) {
      Object.assign(result, { status: 'truncated', reason: `${truncated} events past its max_bytes (shared by up to ${t.trigger.forEach === undefined ? 1 : t.trigger.maxInstances} instances) were not written; raise max_bytes or narrow the filter` });
    } else if (records.some((r) => r.status === 'interrupted')) {
      result.status = 'interrupted';
    }
    return result;
  }
}

/** A field's value as filter text and for_each key. */
function valueText(v: unknown): string {
  if (Array.isArray(v)) return v.join(' ');
  return String(v);
}

/**
 * The cgroup v2 whose id (its directory's inode) is `id`, as the BPF filter
 * takes it (id and depth below the root), found by walking the hierarchy.
 */
export function cgroupById(id: bigint, root: string = cgroup2Mount(), maxDepth = 12): { id: bigint; level: number } {
  let level: (string)[] = [root];
  for (let depth = 0; depth <= maxDepth && level.length; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      let st: fs.BigIntStats;
      try {
        st = fs.statSync(dir, { bigint: true });
      } catch {
        continue; // removed while we walked
      }
      if (st.ino === id) return { id, level: depth };
      try {
        for (const d of fs.readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) next.push(path.join(dir, d.name));
      } catch {
        // gone meanwhile
      }
    }
    level = next;
  }
  throw new Error(`cgroup ${id} is not in ${root} (gone before the step could attach: the scope cannot be honoured)`);
}

/** Append each file's bytes to `dest` in order, then remove it. */
function joinSpools(files: string[], dest: string): void {
  const out = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW, 0o600);
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (const f of files) {
      const fd = fs.openSync(f, 'r');
      try {
        for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) {
          for (let off = 0; off < n; ) off += fs.writeSync(out, buf, off, n - off);
        }
      } finally {
        fs.closeSync(fd);
      }
      fs.rmSync(f);
    }
  } finally {
    fs.closeSync(out);
  }
}
