/**
 * The profile mode: the kernel samples or histograms for the whole step
 * (counts in BPF maps, nothing per event reaches user space), then, at stop,
 * the gadget reads the maps once and turns them into rows (stacks with
 * counts, histogram buckets), which go through the step's filter into the
 * NDJSON spool like any events. A gadget may also keep a small ring buffer
 * of notices while it samples (profile/cpu: "a new process was sampled", so
 * its memory maps are read while it still runs), drained through the shared
 * poller. The gadget's part is its `profile` hooks (types.ts ProfileHooks).
 */
import fs from 'node:fs';
import type { ContainerTracker } from '../../containers/selection.ts';
import { whyNoRingbuf } from '../../ebpf/features.ts';
import type { BpfObject } from '../../ebpf/object.ts';
import { sharedPoller, type Registration } from '../../ebpf/poller.ts';
import { RingReader } from '../../ebpf/ringbuf.ts';
import { compileFilter, type Predicate } from '../filter.ts';
import { prepareObject } from '../prepare.ts';
import type { GadgetDefinition, ProfileGadget, ProfileRun, StepContext, StepOutcome, StepSession } from '../types.ts';
import { spoolOf, type Mode } from './mode.ts';

/** the notice ring: a few thousand notices between two ticks is plenty */
export const NOTICE_RING_BYTES = 256 * 1024;

export const profileMode: Mode<Record<string, never>, ProfileGadget> = {
  name: 'profile',
  description: 'samples or histograms in the kernel for the whole step, read once at its end',
  options: {},
  untilStopped: true,
  plan: () => ({}),
  ringBytes: () => NOTICE_RING_BYTES,
  probe: (def) => (def.profile.notices ? whyNoRingbuf() : undefined),
  open: (def, ctx) => openProfile(def, ctx),
};

export async function openProfile(def: ProfileGadget, ctx: StepContext): Promise<StepSession> {
  const hooks = def.profile;
  const hasRing = hooks.notices === true;
  const { obj, userFilter, warnings, containers } = await prepareObject(def, ctx, (o) => {
    if (hasRing) o.setMaxEntries('events', NOTICE_RING_BYTES);
    hooks.beforeLoad?.(o, ctx.params);
  });
  let run: ProfileRun | undefined;
  let reader: RingReader | undefined;
  try {
    if (hasRing) reader = new RingReader(obj.mapFd('events'), NOTICE_RING_BYTES);
    run = hooks.start(obj, ctx.params, ctx);
    return new ProfileSession(def, ctx, obj, run, reader, rowFilter(def, userFilter), warnings, containers);
  } catch (err) {
    containers?.stop();
    reader?.close();
    obj.close();
    throw err;
  }
}

/** The step's user-space filter over a row object. */
export function rowFilter(def: GadgetDefinition, preds: Predicate[]): (row: Record<string, unknown>) => boolean {
  if (!preds.length) return () => true;
  const { source, regexes } = compileFilter(preds, def.fields, (f) => `e[${JSON.stringify(f)}]`);
  return new Function('R', 'e', `return ${source};`).bind(null, regexes) as (row: Record<string, unknown>) => boolean;
}

class ProfileSession implements StepSession {
  readonly finished = new Promise<void>(() => {});
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly wakeups?: Registration;
  private readonly onRecord?: (offset: number, length: number) => void;

  constructor(
    private readonly def: GadgetDefinition,
    private readonly ctx: StepContext,
    private readonly obj: BpfObject,
    private readonly run: ProfileRun,
    private readonly reader: RingReader | undefined,
    private readonly keep: (row: Record<string, unknown>) => boolean,
    private readonly warnings: string[],
    /** the container set's poller: it reads the object's map, so it stops before the object closes */
    private readonly containers?: ContainerTracker,
  ) {
    if (reader && run.notice) {
      const notice = run.notice;
      this.onRecord = (offset, length) => notice(reader.dv, offset, length);
      this.wakeups = sharedPoller().register(reader.fd);
    }
  }

  get attached(): number {
    return this.obj.attachedCount;
  }

  start(): void {
    this.running = true;
    if (this.wakeups) this.loop = this.drainLoop();
  }

  private async drainLoop(): Promise<void> {
    while (this.running) {
      this.reader!.drain(this.onRecord!);
      await this.wakeups!.wait();
    }
  }

  async stop(): Promise<StepOutcome> {
    this.running = false;
    const leftPoller = this.wakeups?.close();
    try {
      await this.loop;
      this.obj.detach();
      if (this.reader && this.onRecord) this.reader.drain(this.onRecord);
      const { rows, lost, warnings } = this.run.collect();
      const kept = rows.filter(this.keep);
      let text = '';
      for (const r of kept) text += JSON.stringify(r) + '\n';
      let truncated = 0;
      if (Buffer.byteLength(text) > this.ctx.maxBytes) {
        // rows are one result: keep whole rows up to max_bytes
        let bytes = 0;
        const fit = kept.findIndex((r) => (bytes += Buffer.byteLength(JSON.stringify(r)) + 1) > this.ctx.maxBytes);
        truncated = kept.length - fit;
        text = kept.slice(0, fit).map((r) => JSON.stringify(r) + '\n').join('');
      }
      fs.writeFileSync(spoolOf(this.ctx), text, { flag: 'wx', mode: 0o600 });
      const containers = this.containers?.stop();
      return { events: kept.length - truncated, lost, truncated, warnings: [...this.warnings, ...warnings], ...(containers ? { containers } : {}) };
    } finally {
      this.containers?.stop();
      await leftPoller;
      this.reader?.close();
      this.obj.close();
    }
  }
}
