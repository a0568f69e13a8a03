#!/usr/bin/env zx
// Action script: a ticket-ready note of a run that did not pass. A recipe runs it after its
// verdict (`on_failure: [{script: runbooks/ticket.mjs}]`), as the user who ran gadget-run
// (never root unless --user root), with the run's files in its environment:
// GADGET_RUN_SUMMARY, GADGET_RUN_REPORT, GADGET_RUN_OUT, GADGET_RUN_STATUS, GADGET_RUN_EXIT_CODE.
//
// It writes DIR/<recipe>-<time>/ticket.md (the verdict and why, the workload, each step, the
// failed assertions with their evidence) and a copy of report.md, where DIR is --dir, else
// $GADGET_RUN_TICKETS, else <tmp>/gadget-run-tickets; and prints the folder's path, which
// summary.json keeps in the action's output_tail.
import { argv, fs, os, path } from 'zx';

const summaryPath = process.env.GADGET_RUN_SUMMARY;
if (!summaryPath) {
  console.error('ticket.mjs runs as a recipe action: it reads GADGET_RUN_SUMMARY');
  process.exit(2);
}
const summary = JSON.parse(await fs.readFile(summaryPath, 'utf8'));
const root = path.resolve(argv.dir ?? process.env.GADGET_RUN_TICKETS ?? path.join(os.tmpdir(), 'gadget-run-tickets'));
const dir = path.join(root, `${summary.recipe}-${summary.startedAt.replace(/[:.]/g, '-')}`);
await fs.mkdirp(dir);

const lines = [
  `# ${summary.recipe}: ${summary.status} (exit ${process.env.GADGET_RUN_EXIT_CODE})`,
  '',
  `Node ${summary.node}, Linux ${summary.kernel}, started ${summary.startedAt}.`,
  '',
  '## Why',
  '',
  ...(summary.reasons.length ? summary.reasons.map((r) => `- ${r}`) : ['- (no reason recorded)']),
];
if (summary.workload) {
  lines.push('', '## Workload', '', '```text', summary.workload.command.trimEnd(), '```', '', `exit ${summary.workload.exitCode}${summary.workload.timedOut ? ' (timed out)' : ''}, as ${summary.workload.user?.name ?? '?'}`);
}
lines.push('', '## Steps', '');
for (const s of summary.steps) lines.push(`- ${s.id} (${s.gadget}): ${s.status}, ${s.events} events${s.lost ? `, ${s.lost} lost` : ''}${s.reason ? ` — ${s.reason}` : ''}`);
const failed = summary.assertions.filter((a) => !a.passed);
if (failed.length) {
  lines.push('', '## Failed assertions', '');
  for (const a of failed) {
    lines.push(`- ${a.name}: ${a.message}`);
    if (a.evidence) lines.push('', '```json', JSON.stringify(a.evidence, null, 2), '```');
  }
}
lines.push('', `The run's folder: ${process.env.GADGET_RUN_OUT}`);
await fs.writeFile(path.join(dir, 'ticket.md'), lines.join('\n') + '\n');
await fs.copyFile(process.env.GADGET_RUN_REPORT, path.join(dir, 'report.md'));
echo(`ticket: ${dir}`);
