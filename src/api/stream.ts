/**
 * stream(): a gadget's events as an async iterator, for live use in scripts:
 *
 *   for await (const e of stream('trace/exec', { filter: 'comm==curl' })) console.log(e.args);
 *
 * The session is the stream mode's own (src/steps/modes/stream.ts: its drain loop, filters
 * and codec), opened with a live sink instead of a spool: each event that passes the filter
 * is decoded into an object and queued for the consumer. The queue is bounded: when the
 * consumer is slower than the events, the ones that find it full are counted as dropped
 * (stats()), so memory stays what `queue` events take. Leaving the loop (break, return, a
 * throw), close() and the abort signal all stop the session: detach, last drain, and every
 * kernel object closed.
 *
 * Before `ready` resolves, the stream proves it hears (a recipe step's liveness canary,
 * src/runner/canary.ts): the gadget's canary runs on the node (a stream has no workload cgroup:
 * its scope is the node, or its containers, where the canary cannot run and the stream stays
 * unproven) and its event must come back through the ring and the decoder; the session drops it
 * before the filter, so it is never delivered. A deaf stream rejects `ready` (CouldNotTraceError).
 */
import fs from 'node:fs';
import { bootToWallNs } from '../ebpf/clock.ts';
import { KernelError, UnsupportedError } from '../ebpf/errors.ts';
import { OptionError } from '../runner/errors.ts';
import { Canary, canaryActions, canaryBudgetMs, canaryHelper, runCanary, type CanaryStep, type LivenessMode } from '../runner/canary.ts';
import type { CanarySummary } from '../runner/summary.ts';
import { findGadget } from '../steps/index.ts';
import { openSession, whyNotLive } from '../steps/modes/index.ts';
import type { Codec, EventSink, StepOutcome, StepSession } from '../steps/types.ts';
import { defaultObjectDir } from '../util/package-root.ts';
import { useBtfOption } from './btf.ts';
import { CouldNotTraceError } from './errors.ts';
import { loadGadgetStep } from './one-step.ts';
import type { EventStream, GadgetEvent, StreamOptions, StreamStats } from './types.ts';

const DEFAULT_QUEUE = 10_000;

/** A gadget's events as they happen; see EventStream. Loading starts at once: await `ready` before making the events you want to see. */
export function stream<E = GadgetEvent>(gadget: string, opts: StreamOptions = {}): EventStream<E> {
  return new LiveStream<E>(gadget, opts);
}

/**
 * The bounded queue between the drain loop and the consumer: the session's sink. Events that
 * find it full are counted, not kept; after close() nothing more comes.
 */
class LiveQueue<E> implements EventSink {
  readonly truncated = 0;
  dropped = 0;
  maxQueued = 0;
  closed = false;
  /** the consumer left: events still pass through the filter (and count), none is kept */
  discarding = false;
  private items: (E | undefined)[] = [];
  private head = 0;
  private wake?: () => void;

  constructor(readonly limit: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  append(codec: Codec, offset: number, length: number): boolean {
    const e = codec.decode(offset, length);
    if (e === undefined) return false;
    if (this.discarding) return true;
    if (this.length >= this.limit) {
      this.dropped++;
      return true;
    }
    this.items.push(e as E);
    if (this.length > this.maxQueued) this.maxQueued = this.length;
    return true;
  }

  flush(): void {
    if (this.length) this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  take(): E | undefined {
    if (this.head === this.items.length) return undefined;
    const e = this.items[this.head];
    this.items[this.head++] = undefined;
    // taken slots are given back once they are most of the array
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  discard(): void {
    this.discarding = true;
    this.items = [];
    this.head = 0;
  }

  /** resolves at the next flush with events, close, or notify */
  wait(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

class LiveStream<E> implements EventStream<E> {
  readonly ready: Promise<void>;
  private readonly queue: LiveQueue<E>;
  private session?: StepSession;
  private outcome?: StepOutcome;
  /** the session's figures when last read: a stopping session's object may be closed already */
  private last: { events: number; lost?: number } = { events: 0, lost: 0 };
  private delivered = 0;
  /** the loop or the stop failed: thrown once by next() */
  private failure?: { error: unknown; thrown: boolean };
  private stopping?: Promise<void>;
  private readonly onAbort = () => void this.shutdown();
  private liveness?: CanarySummary;
  /** resolves once the canary is gone and the session no longer looks for it: the session stops after */
  private canaryGone: Promise<void> = Promise.resolve();

  constructor(
    private readonly gadget: string,
    private readonly opts: StreamOptions,
  ) {
    const limit = opts.queue ?? DEFAULT_QUEUE;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new OptionError('queue', `${String(opts.queue)} is not a number of events (at least 1)`);
    this.queue = new LiveQueue<E>(limit);
    this.ready = this.open();
    // the error is next()'s to throw; a caller who never awaits `ready` must not get an unhandled rejection
    this.ready.catch(() => {});
  }

  private async open(): Promise<void> {
    const def = findGadget(this.gadget);
    const notLive = def && whyNotLive(def);
    if (notLive) throw new OptionError('gadget', `${notLive}; run it in a recipe with run()`);
    useBtfOption(this.opts.btf);
    const { filter, params, containers, buffer, interval, sort, maxRows, liveness, canaryBudget } = this.opts;
    const step = { filter, params, containers, buffer, interval, sort, max_rows: maxRows, liveness, canary_budget: canaryBudget };
    const OPTIONS: Record<string, string> = { max_rows: 'maxRows', canary_budget: 'canaryBudget' };
    const [plan] = loadGadgetStep(this.gadget, step, { where: 'stream()', option: (key) => OPTIONS[key] ?? key }).steps;
    const objectDir = this.opts.objects ?? defaultObjectDir();
    const check: CanaryStep = {
      id: plan.spec.id,
      def: plan.def,
      params: plan.spec.params ?? {},
      liveness: (plan.spec.liveness ?? 'checked') as LivenessMode,
      budgetMs: canaryBudgetMs(plan.spec.canary_budget),
      containersOnly: !!plan.containers,
    };
    // the canary starts while the gadget loads, and waits for its go
    const actions = canaryActions([check]);
    const canary = actions.length && fs.existsSync(canaryHelper(objectDir)) ? new Canary(canaryHelper(objectDir), actions, undefined) : undefined;
    try {
      this.session = await openSession(plan.def, {
        id: plan.spec.id,
        params: plan.spec.params ?? {},
        filter: plan.filter,
        ...(plan.containers ? { containers: plan.containers } : {}),
        sink: this.queue,
        bootToWallNs: bootToWallNs(),
        objectDir,
        options: plan.options,
        maxBytes: plan.maxBytes,
      });
    } catch (err) {
      canary?.kill();
      if (err instanceof UnsupportedError || err instanceof KernelError) throw new CouldNotTraceError(err.message, undefined, { cause: err });
      throw err;
    }
    this.session.start();
    const { results, gone } = await runCanary([{ ...check, session: this.session }], canary);
    this.canaryGone = gone;
    this.liveness = results.get(check.id);
    if (this.liveness?.state === 'failed') {
      // deaf: nothing it would deliver could be trusted; the session is stopped here, `ready` rejects
      const session = this.session;
      this.session = undefined;
      try {
        await gone;
      } finally {
        await session.stop();
      }
      throw new CouldNotTraceError(`${this.gadget}: ${this.liveness.reason}`);
    }
    this.session.finished.catch((error: unknown) => {
      this.failure ??= { error, thrown: false };
      void this.shutdown();
    });
    const signal = this.opts.signal;
    if (signal?.aborted) void this.shutdown();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<E, StreamStats>> {
    try {
      await this.ready;
    } catch (err) {
      if (this.failure) return this.done();
      this.failure = { error: err, thrown: true };
      this.queue.close();
      throw err;
    }
    for (;;) {
      const e = this.queue.take();
      if (e !== undefined) {
        this.delivered++;
        return { value: e, done: false };
      }
      if (this.failure && !this.failure.thrown) {
        this.failure.thrown = true;
        await this.shutdown();
        throw this.failure.error;
      }
      // closed by the session's stop: its outcome (the final figures) comes with the stop's end
      if (this.queue.closed) {
        await this.stopping;
        return this.done();
      }
      await this.queue.wait();
    }
  }

  async return(): Promise<IteratorResult<E, StreamStats>> {
    await this.shutdown(true);
    return this.done();
  }

  async close(): Promise<StreamStats> {
    return (await this.return()).value as StreamStats;
  }

  canary(): CanarySummary | undefined {
    return this.liveness;
  }

  stats(): StreamStats {
    if (!this.outcome && !this.stopping && this.session?.progress) this.last = this.session.progress();
    const now = this.outcome ?? this.last;
    return {
      events: now.events,
      delivered: this.delivered,
      dropped: this.queue.dropped,
      lost: now.lost ?? 0,
      queued: this.queue.length,
      maxQueued: this.queue.maxQueued,
      limit: this.queue.limit,
    };
  }

  private done(): IteratorResult<E, StreamStats> {
    return { value: this.stats(), done: true };
  }

  /** Stop the session once (detach, last drain into the queue, close every kernel object); `discard` drops what is queued. */
  private shutdown(discard = false): Promise<void> {
    if (discard) this.queue.discard();
    this.stopping ??= (async () => {
      this.opts.signal?.removeEventListener('abort', this.onAbort);
      try {
        await this.ready;
      } catch {
        this.queue.close();
        return;
      }
      try {
        // the canary's last events are known by its pid until it is gone
        await this.canaryGone;
        this.outcome = await this.session!.stop();
      } catch (error) {
        // the loop's own failure comes back from stop(): it is reported once
        this.failure ??= { error, thrown: false };
      } finally {
        this.queue.close();
      }
    })();
    return this.stopping;
  }
}
