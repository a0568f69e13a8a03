// Preloaded into the CLI by test/k8s/scale.test.ts (NODE_OPTIONS=--import): the process's
// peak RSS (getrusage's maxrss, KiB) on the first line of $GADGET_RUN_PEAK_RSS_FILE as it exits,
// and on the second, where the peak was: the sample of process.memoryUsage() (every 50 ms) with
// the highest RSS, in MiB, and when it was taken (ms since the process started), which the test
// sets beside the run's own times (all attached, all done, merged) to tell the phase.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

const file = process.env.GADGET_RUN_PEAK_RSS_FILE;
if (file) {
  const mib = (n) => Math.round(n / 1048576);
  let peak = { rss: 0 };
  setInterval(() => {
    const m = process.memoryUsage();
    if (mib(m.rss) > peak.rss) peak = { atMs: Math.round(performance.now()), rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers) };
  }, 50).unref();
  process.on('exit', () => fs.writeFileSync(file, `${process.resourceUsage().maxRSS}\n${JSON.stringify(peak)}\n`));
}
