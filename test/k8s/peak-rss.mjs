// Preloaded into the CLI by test/k8s/scale.test.ts (NODE_OPTIONS=--import): the process's
// peak RSS (getrusage's maxrss, KiB), written to $GADGET_RUN_PEAK_RSS_FILE as it exits.
import fs from 'node:fs';

const file = process.env.GADGET_RUN_PEAK_RSS_FILE;
if (file) process.on('exit', () => fs.writeFileSync(file, `${process.resourceUsage().maxRSS}\n`));
