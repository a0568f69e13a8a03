/**
 * The snapshot shape: one pass of a BPF iterator, whose program writes
 * fixed-size entries with bpf_seq_write; each entry goes through the codec
 * into the step's NDJSON spool.
 */
import { readIterator } from '../../ebpf/iter.ts';
import { buildCodec } from '../codec.ts';
import { prepareObject } from '../prepare.ts';
import { LineSink } from '../sink.ts';
import type { SnapshotGadget, StepContext, StepOutcome, StepSession } from '../types.ts';
import { durationOption, planOrThrow, spoolOf, type Mode } from './mode.ts';

/** The iterator programs a step runs, in order. */
export function snapshotIterators(def: SnapshotGadget, params: Record<string, unknown>): string[] {
  if (def.iterators) return def.iterators(params);
  return typeof def.iterator === 'string' ? [def.iterator] : def.iterator;
}

export interface SnapshotOptions {
  /** ms after start to take the snapshot */
  delayMs: number;
}

export const snapshotMode: Mode<SnapshotOptions, SnapshotGadget> = {
  name: 'snapshot',
  description: 'one pass of a BPF iterator: the state at one moment',
  options: {
    delay: {
      $ref: '#/definitions/duration',
      description: 'snapshot gadgets: how long after the start (of the workload, with run) to take the snapshot',
    },
  },
  untilStopped: false,
  plan: (values, _def, problem) => ({ delayMs: values.delay === undefined ? 0 : durationOption(values, 'delay', problem) }),
  open: (def, ctx) => openSnapshot(def, ctx, planOrThrow(snapshotMode, def, ctx.options)),
};

async function openSnapshot(def: SnapshotGadget, ctx: StepContext, o: SnapshotOptions): Promise<StepSession> {
  const prepared = await prepareObject(def, ctx);
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  let timer: NodeJS.Timeout | undefined;
  let taken = false;
  let events = 0;
  let failure: unknown;
  let sinkRef: LineSink | undefined;

  const take = () => {
    const { obj, userFilter } = prepared;
    const sink = new LineSink(spoolOf(ctx), ctx.maxBytes);
    sinkRef = sink;
    try {
      const layout = obj.btf.struct(def.struct);
      const netns = def.netns?.(ctx.params);
      const buf = Buffer.concat(snapshotIterators(def, ctx.params).map((p) => readIterator(obj.openIterator(p, netns))));
      obj.detach();
      const codec = buildCodec(def, layout, { buf, dv: new DataView(buf.buffer, buf.byteOffset, buf.byteLength) }, userFilter, {
        bootToWallNs: ctx.bootToWallNs,
      });
      for (let off = 0; off + layout.size <= buf.length; off += layout.size) {
        if (sink.append(codec, off, layout.size)) events++;
      }
      taken = true;
    } catch (err) {
      failure = err;
    } finally {
      sink.close();
      done();
    }
  };

  return {
    finished,
    get attached() {
      return prepared.obj.attachedCount;
    },
    start() {
      timer = setTimeout(take, o.delayMs);
    },
    async stop(): Promise<StepOutcome> {
      clearTimeout(timer);
      const containers = prepared.containers?.stop();
      prepared.obj.close();
      if (failure) throw failure;
      const warnings = [...prepared.warnings];
      return { events, lost: 0, truncated: sinkRef?.truncated ?? 0, warnings, ...(containers ? { containers } : {}), ...(taken ? {} : { notTaken: true }) };
    },
  };
}
