/**
 * A stream gadget's second source of events, read in user space next to its
 * ring buffer (audit/seccomp: the kernel's seccomp audit records in
 * /dev/kmsg). The source writes records of the gadget's own event struct into
 * a buffer of its own and hands them, with a codec over that buffer, to the
 * stream session's sink: one spool, one filter language, one byte limit and
 * one event count for both sources (src/steps/modes/stream.ts).
 */
import type { BtfStruct } from '../ebpf/btf.ts';
import type { BpfObject } from '../ebpf/object.ts';
import type { Codec } from './codec.ts';
import type { GadgetDefinition, StepContext } from './types.ts';

/** Takes one record: `codec` reads it at [offset, offset + length) of the source's buffer. */
export type RecordSink = (codec: Codec, offset: number, length: number) => void;

export interface UserSource {
  /** hand every record that is ready to `sink`; called on every pass of the drain loop, so it must not block */
  drain(sink: RecordSink): void;
  /** after detach and the ring's last drain: the records left, what the source lost and why */
  finish(sink: RecordSink): { lost: number; warnings: string[] };
  /** lost so far, for progress lines */
  lost(): number;
  close(): void;
}

export interface UserSourceGadgetDefinition extends GadgetDefinition {
  /** opened after the object is loaded, just before it is attached */
  userSource(obj: BpfObject, layout: BtfStruct, ctx: StepContext): UserSource;
}

export function hasUserSource(def: GadgetDefinition): def is UserSourceGadgetDefinition {
  return 'userSource' in def;
}
