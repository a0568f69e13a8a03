/**
 * GADGET_RUN_TIMING=1: the start-up, part by part. Each mark prints one
 * stderr line `gadget-run: timing <ms> <what>`, ms from the process's start
 * (performance.now(), the clock of summary.attachedAfterMs); bench/startup.ts
 * tabulates them. Off, a mark costs one boolean test. Node built-ins only:
 * the entry imports it before anything else.
 */
import { performance } from 'node:perf_hooks';

const on = !!process.env.GADGET_RUN_TIMING;

export function mark(what: string): void {
  if (on) process.stderr.write(`gadget-run: timing ${performance.now().toFixed(1)} ${what}\n`);
}
