/** Human-readable views of a summary: a terminal table and report.md (fit for a CI job summary). */
import { formatMs } from './duration.ts';
import type { AssertionStatus, AssertionSummary, Summary } from './summary.ts';

/** Older summaries (and hand-made ones) carry only `passed`. */
const statusOf = (a: AssertionSummary): AssertionStatus => a.status ?? (a.passed ? 'passed' : 'failed');
const TERMINAL: Record<AssertionStatus, string> = { passed: 'PASS', failed: 'FAIL', not_evaluated: 'NOT EVALUATED', skipped: 'SKIP' };
const MARKDOWN: Record<AssertionStatus, string> = { passed: '✅', failed: '❌', not_evaluated: '⚠️ not evaluated —', skipped: '⏭️ skipped —' };

function stepRows(summary: Summary): string[][] {
  return summary.steps.map((s) => [
    s.id,
    s.gadget,
    s.status,
    String(s.events),
    String(s.lost),
    s.artifacts.join(' ') || '-',
    s.reason ?? s.warnings?.join('; ') ?? '',
  ]);
}

/** A multi-line workload as its first line and a line count. */
export function oneLine(command: string): string {
  const lines = command.trim().split('\n');
  return lines.length > 1 ? `${lines[0]} … (${lines.length} lines)` : lines[0];
}

const HEAD = ['step', 'gadget', 'status', 'events', 'lost', 'artifacts', 'notes'];

export function renderTerminal(summary: Summary, outDir: string): string {
  const rows = [HEAD, ...stepRows(summary)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows.map((r) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
  const lines = [`${summary.recipe}: ${summary.status.toUpperCase()} in ${formatMs(summary.durationMs)}${summary.error ? ` — ${summary.error}` : ''}`, ...table];
  if (summary.workload) lines.push(`  workload: ${oneLine(summary.workload.command)} → exit ${summary.workload.exitCode}${summary.workload.timedOut ? ' (timed out)' : ''}`);
  const lost = summary.steps.filter((s) => s.lost > 0);
  if (lost.length) lines.push(`  warning: events were dropped in the kernel (${lost.map((s) => `${s.id}: ${s.lost}`).join(', ')}); raise the step's buffer or narrow its filter`);
  if (summary.assertions.length) {
    lines.push('assertions:');
    for (const a of summary.assertions) lines.push(`  ${TERMINAL[statusOf(a)]} ${a.name}${a.passed ? '' : ` — ${a.message}`}`);
  }
  lines.push(`artifacts: ${outDir}/ (summary.json, report.md${summary.steps.flatMap((s) => s.artifacts).map((a) => `, ${a}`).join('')})`);
  return lines.join('\n') + '\n';
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(summary: Summary): string {
  const out = [
    `# ${summary.recipe}: ${summary.status}`,
    '',
    `Node \`${summary.node}\` (Linux ${summary.kernel}), started ${summary.startedAt}, took ${formatMs(summary.durationMs)}.`,
  ];
  if (summary.error) out.push('', `**Error:** ${summary.error}`);
  if (summary.workload) out.push('', `Workload \`${summary.workload.command}\` exited with ${summary.workload.exitCode}${summary.workload.timedOut ? ' (timed out)' : ''}.`);
  out.push('', `| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`);
  for (const r of stepRows(summary)) out.push(`| ${r.map(cell).join(' | ')} |`);
  for (const s of summary.steps) if (s.report) out.push('', `## ${s.id} (${s.gadget})`, '', s.report.trimEnd());
  if (summary.assertions.length) {
    out.push('', '## Assertions', '');
    for (const a of summary.assertions) out.push(`- ${MARKDOWN[statusOf(a)]} ${cell(a.name)}${a.passed ? '' : `: ${cell(a.message)}`}`);
  }
  return out.join('\n') + '\n';
}
