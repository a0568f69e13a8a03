/**
 * The runner without a kernel: a fake stream gadget, and a captured directory made by
 * hand (DIR/raw/<step>.ndjson + .meta.json) for evaluate().
 */
import fs from 'node:fs';
import path from 'node:path';
import { UnsupportedError } from '../../src/ebpf/errors.ts';
import type { StepMeta } from '../../src/runner/capture.ts';
import type { GadgetDefinition, StepContext, StepSession } from '../../src/steps/types.ts';
import { spoolOf } from '../../src/steps/modes/mode.ts';

export const fakeStream: GadgetDefinition = {
  id: 'test/stream',
  description: 'events given by the test',
  mode: 'stream',
  object: 'none.bpf.o',
  struct: 'none',
  fields: [
    { name: 'pid', type: 'number', description: '' },
    { name: 'comm', type: 'string', description: '' },
    { name: 'args', type: 'string[]', description: '' },
  ],
  kernelFilters: {},
  requires: [],
};
const fakeUnsupported: GadgetDefinition = { ...fakeStream, id: 'test/unsupported' };
export const registry = { 'test/stream': fakeStream, 'test/unsupported': fakeUnsupported };

export const EVENTS = [
  { pid: 1, comm: 'sh', args: ['sh', '-c', 'x'] },
  { pid: 2, comm: 'curl', args: ['curl', 'https://example.com'] },
  { pid: 3, comm: 'ls', args: ['ls', '-l'] },
];

/** A stream that writes its events when stopped, as a drained ring buffer would. */
export function fakeOpen(events: unknown[] = EVENTS) {
  const opened: string[] = [];
  const open = async (def: GadgetDefinition, ctx: StepContext): Promise<StepSession> => {
    if (def.id === 'test/unsupported') throw new UnsupportedError('test/unsupported', { kind: 'tracepoint', name: 'test/lacking' });
    opened.push(ctx.id);
    return {
      finished: new Promise(() => {}),
      attached: 1,
      start() {},
      async stop() {
        fs.writeFileSync(spoolOf(ctx), events.map((e) => JSON.stringify(e) + '\n').join(''));
        return { events: events.length, lost: 0, warnings: [] };
      },
    };
  };
  return { open, opened };
}


export function captured(dir: string, events: Record<string, unknown[] | null>, fields: string[], meta: Record<string, Partial<StepMeta>> = {}): void {
  fs.mkdirSync(path.join(dir, 'raw'), { recursive: true });
  for (const [id, list] of Object.entries(events)) {
    if (list) fs.writeFileSync(path.join(dir, 'raw', `${id}.ndjson`), list.map((e) => JSON.stringify(e) + '\n').join(''));
    const m: StepMeta = { id, gadget: 'test/stream', fields, status: 'ok', events: list?.length ?? 0, lost: 0, ended: 'duration', durationMs: 10, ...meta[id] };
    fs.writeFileSync(path.join(dir, 'raw', `${id}.meta.json`), JSON.stringify(m));
  }
}
