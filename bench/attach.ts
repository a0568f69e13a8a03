/**
 * Cold start: a fresh Node process that opens trace/open and prints, as one
 * JSON line, how long after its own start every program was attached. A
 * fresh process because the first openSession also pays for loading koffi,
 * libbpf and the TypeScript modules, which is what a user's command pays.
 * run.ts spawns it and adds the exec-to-Node-start time it sees from outside.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openTraceOpen } from './session.ts';

const spool = path.join(os.tmpdir(), `gadget-run-bench-attach-${process.pid}.ndjson`);
const before = performance.now();
const session = await openTraceOpen(spool, 'open_loop');
// performance.now() counts from this process's time origin (its start)
const attachedMs = performance.now();
console.log(JSON.stringify({ sinceNodeStartMs: attachedMs, openSessionMs: attachedMs - before, attached: session.attached }));
session.start();
await session.stop();
fs.rmSync(spool, { force: true });
