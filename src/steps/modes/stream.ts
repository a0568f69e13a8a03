/**
 * The stream shape: events flow from the ring buffer through the generated
 * codec into the step's NDJSON spool until the runner stops the step. The
 * drain loop wakes on the kernel's batched wakeups or on the shared poller's
 * tick (every TICK_MS, one epoll wait for all sessions: src/ebpf/poller.ts),
 * and the final drain after detach consumes everything left, so the tail is
 * never lost.
 */
import fs from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { cgroup2Mount } from '../../containers/discovery.ts';
import { whyNoRingbuf } from '../../ebpf/features.ts';
import type { ContainerTracker } from '../../containers/selection.ts';
import type { BpfObject } from '../../ebpf/object.ts';
import { sharedPoller, type Registration } from '../../ebpf/poller.ts';
import { RingReader } from '../../ebpf/ringbuf.ts';
import { buildCodec, type Codec } from '../codec.ts';
import { parseSize } from '../duration.ts';
import { prepareObject } from '../prepare.ts';
import { sinkFor } from '../sink.ts';
import { closeAll } from '../../util/close-all.ts';
import { CanaryGate, type CanaryProbe } from '../liveness.ts';
import type { EventSink, RecordSink, StepContext, StepOutcome, StepSession, StreamGadget, UserSource } from '../types.ts';
import { planOrThrow, type Mode, type OptionProblem, type StepOptions } from './mode.ts';

const DEFAULT_RING_BYTES = 16 * 1024 * 1024;

export interface StreamOptions {
  /** ring buffer bytes (power of two, multiple of the page size) */
  ringBytes: number;
}

export const streamMode: Mode<StreamOptions, StreamGadget> = {
  name: 'stream',
  description: 'events from a ring buffer, as they happen, until the step stops',
  options: {
    buffer: {
      type: 'string',
      pattern: '^[0-9]{1,6}(KiB|MiB)$',
      description: 'stream and packet gadgets: ring buffer size, a power of two (default 16MiB)',
    },
  },
  untilStopped: true,
  live: true,
  plan: (values, _def, problem) => planRing(values, problem),
  ringBytes: (o) => o.ringBytes,
  probe: () => whyNoRingbuf(),
  open: (def, ctx) => openStream(def, ctx, planOrThrow(streamMode, def, ctx.options)),
};

/** The `buffer` key, planned: the ring buffer of a stream, or of a packet gadget (./packet.ts). */
export function planRing(values: StepOptions, problem: OptionProblem): StreamOptions {
  if (values.buffer === undefined) return { ringBytes: DEFAULT_RING_BYTES };
  const ringBytes = parseSize(values.buffer as string);
  if (ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0) problem('buffer', 'the ring buffer size must be a power of two of at least 4KiB (e.g. 1MiB, 16MiB)');
  return { ringBytes };
}

/** The object with its ring sized as the step asked: the stream shapes' beforeLoad. */
export const sizeRing = (o: StreamOptions) => (obj: BpfObject) => obj.setMaxEntries('events', o.ringBytes);

/**
 * After a drain, go again at once only while more than this is unread; else
 * sleep until the kernel's next wakeup (256 KiB unread) or the poller's tick. Draining
 * again whenever the last drain found anything spins on one or two records
 * per pass against a steady producer: ~400k passes and 4-5 CPU s per 1M
 * trace/open events, against 0.35 s for the records themselves (bench/).
 */
const DRAIN_AGAIN_BYTES = 64 * 1024;

async function openStream(def: StreamGadget, ctx: StepContext, o: StreamOptions): Promise<StepSession> {
  const { obj, userFilter, warnings, containers } = await prepareObject(def, ctx, sizeRing(o));
  let reader: RingReader | undefined;
  let sink: EventSink | undefined;
  let side: UserSource | undefined;
  try {
    reader = new RingReader(obj.mapFd('events'), o.ringBytes);
    const codec = buildCodec(def, obj.btf.struct(def.struct), reader, userFilter, { bootToWallNs: ctx.bootToWallNs });
    sink = sinkFor(ctx);
    side = def.userSource?.(obj, obj.btf.struct(def.struct), ctx);
    const pid = obj.btf.struct(def.struct).members.find((m) => m.name === (def.fields.find((f) => f.name === 'pid')?.member ?? 'pid'));
    def.beforeAttach?.(obj, ctx);
    obj.attachAll(def.cgroupPrograms);
    if (def.cgroupPrograms) attachToCgroupRoot(obj, def, ctx);
    return new StreamSession(obj, reader, sink, codec, warnings, containers, side, pid && pid.type.size === 4 ? pid.offset : undefined);
  } catch (err) {
    side?.close();
    containers?.stop();
    sink?.close();
    reader?.close();
    obj.close();
    throw err;
  }
}

/**
 * The gadget's cgroup programs on the cgroup v2 root, as bpf_links (multi:
 * beside anyone else's programs there): the containers the workload starts
 * live in their runtime's cgroups, elsewhere in the tree, so no lower cgroup
 * covers the whole run. Every socket of the node runs them, and the programs
 * judge only the run's tasks themselves (bpf/audit_egress.bpf.c
 * egress_current_in_run), from the workload's cgroup and the sets its
 * container scope keeps (fork ancestry, the containers it started): without
 * that scope they would judge the workload's cgroup alone, so it is required.
 */
function attachToCgroupRoot(obj: BpfObject, def: StreamGadget, ctx: StepContext): void {
  if (!ctx.cgroup) throw new Error(`${def.id} acts on a workload's cgroup: give the recipe a run command`);
  if (!ctx.containers?.workload || ctx.containers.selection) {
    throw new Error(`${def.id} judges the workload and the containers it starts: its step must follow the workload's containers (no container selection, not containers: {workload: false})`);
  }
  const fd = fs.openSync(cgroup2Mount(), 'r');
  try {
    for (const p of def.cgroupPrograms ?? []) obj.attachCgroup(p, fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The drain loop over a loaded, attached object; the packet mode (./packet.ts) reuses it with
 * its own codec and attach. `finished` never resolves (a stream runs until stopped); it
 * rejects when the loop fails, so whoever watches the session hears of it at once.
 */
export class StreamSession implements StepSession {
  private failed!: (err: unknown) => void;
  readonly finished = new Promise<void>((_, reject) => (this.failed = reject));
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private events = 0;
  private readonly onRecord: (offset: number, length: number) => void;
  private readonly onSideRecord: RecordSink;
  private readonly wakeups: Registration;
  readonly canary?: CanaryProbe;

  constructor(
    private readonly obj: BpfObject,
    private readonly reader: RingReader,
    private readonly sink: EventSink,
    codec: Codec,
    private readonly warnings: string[],
    private readonly containers?: ContainerTracker,
    /** events read in user space besides the ring (types.ts UserSource) */
    private readonly side?: UserSource,
    /** the offset of the event's pid (u32) in a record: how the canary's markers are known; none: no canary */
    pidOffset?: number,
  ) {
    const gate = pidOffset === undefined ? undefined : new CanaryGate(obj);
    const dv = reader.dv;
    this.onRecord = gate
      ? (offset, length) => {
          // the canary's marker is known before the filter, and never reaches the sink
          if (gate.tgid !== 0 && gate.marker(dv.getUint32(offset + pidOffset!, true))) return;
          if (sink.append(codec, offset, length)) this.events++;
        }
      : (offset, length) => {
          if (sink.append(codec, offset, length)) this.events++;
        };
    if (gate) {
      this.canary = {
        arm: (tgid) => gate.arm(tgid),
        check: () => {
          this.reader.drain(this.onRecord);
          this.sink.flush();
          return gate.seen;
        },
        release: () => gate.release(),
        disarm: () => {
          // after stop the reader is closed and its last drain already knew the canary
          if (this.stopped) return gate.disarm();
          try {
            this.reader.drain(this.onRecord);
          } finally {
            gate.disarm();
          }
        },
      };
    }
    this.onSideRecord = (c, offset, length) => {
      if (sink.append(c, offset, length)) this.events++;
    };
    this.wakeups = sharedPoller().register(reader.fd);
  }

  get attached(): number {
    return this.obj.attachedCount;
  }

  progress(): { events: number; lost: number } {
    // one map lookup (a syscall) on the .bss map: cheap at a progress line's rate
    return { events: this.events, lost: this.obj.readGlobal('gadget_lost') + (this.side?.lost() ?? 0) };
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
    // stop() awaits the loop and rethrows; until then `finished` carries the failure
    this.loop.catch((err) => {
      this.running = false;
      this.failed(err);
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.reader.drain(this.onRecord);
      this.side?.drain(this.onSideRecord);
      this.sink.flush();
      if (this.reader.unread() > DRAIN_AGAIN_BYTES) await yieldToLoop();
      else await this.wakeups.wait();
    }
  }

  private stopped = false;

  async stop(): Promise<StepOutcome> {
    this.running = false;
    this.stopped = true;
    // leaving the poller wakes the loop's pending wait now rather than at the
    // next tick; the other sessions' waits go on
    const leftPoller = this.wakeups.close();
    try {
      await this.loop;
      this.obj.detach();
      this.reader.drain(this.onRecord);
      const side = this.side?.finish(this.onSideRecord);
      const lost = this.obj.readGlobal('gadget_lost') + (side?.lost ?? 0);
      const warnings = side ? [...this.warnings, ...side.warnings] : this.warnings;
      const containers = this.containers?.stop();
      return { events: this.events, lost, truncated: this.sink.truncated, warnings, ...(containers ? { containers } : {}) };
    } finally {
      await leftPoller;
      // after a failed loop the container tracker's timer still runs: it must not outlive the map it reads
      closeAll(() => this.side?.close(), () => this.sink.close(), () => this.containers?.stop(), () => this.reader.close(), () => this.obj.close());
    }
  }
}
