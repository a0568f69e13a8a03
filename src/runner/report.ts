/**
 * Human-readable views of a summary: a terminal table and report.md (fit for a CI job
 * summary). Both say why a run failed (its reasons), and what each failed assertion saw
 * (its evidence). report.md stays valid Markdown whatever the workload's text holds: that
 * text goes in fenced blocks whose fence is longer than any backtick run inside, or in
 * table cells with Markdown and HTML escaped.
 */
import { formatMs } from '../steps/duration.ts';
import { evidenceLines } from './evidence.ts';
import type { ActionSummary, AssertionStatus, AssertionSummary, StepSummary, Summary, WorkloadSummary } from './summary.ts';
import { lostPastAllowed, oneLine } from './verdict.ts';

/** Older summaries (and hand-made ones) carry only `passed`. */
const statusOf = (a: AssertionSummary): AssertionStatus => a.status ?? (a.passed ? 'passed' : 'failed');
const TERMINAL: Record<AssertionStatus, string> = { passed: 'PASS', failed: 'FAIL', not_evaluated: 'NOT EVALUATED', skipped: 'SKIP' };
const MARKDOWN: Record<AssertionStatus, string> = { passed: '✅', failed: '❌', not_evaluated: '⚠️ not evaluated —', skipped: '⏭️ skipped —' };

function notes(s: StepSummary): string {
  const parts = [s.reason, ...(s.warnings ?? [])].filter((x): x is string => !!x);
  if (s.lost > 0 && s.allow_lost !== undefined && s.allow_lost !== false && !lostPastAllowed(s)) parts.push(`lost events allowed (allow_lost: ${s.allow_lost})`);
  const b = s.baseline;
  if (b?.profile) parts.push(`baseline ${b.file}: ${b.profile.grew.length ? `grew most: ${b.profile.grew[0].function} ${b.profile.grew[0].before}% → ${b.profile.grew[0].after}%` : 'no function grew'} (${b.profile.diff})${b.updated ? ', updated' : ''}`);
  else if (b) parts.push(`baseline ${b.file}: ${b.added.length} new, ${b.removed.length} removed${b.updated ? ', updated' : ''}`);
  return parts.join('; ');
}

function stepRows(summary: Summary): string[][] {
  return summary.steps.map((s) => [s.id, s.gadget, s.status, String(s.events), String(s.lost), s.artifacts.join(' ') || '-', s.ended_by ?? '-', notes(s)]);
}


const HEAD = ['step', 'gadget', 'status', 'events', 'lost', 'artifacts', 'ended by', 'notes'];
const STATUS_WORDS: Record<Summary['status'], string> = { passed: 'PASSED', failed: 'FAILED', interrupted: 'INTERRUPTED', error: 'ERROR', could_not_trace: 'COULD NOT TRACE' };

/** The baseline's news: new keys (they fail the run), removed ones (reported). */
function baselineLines(s: StepSummary): string[] {
  const b = s.baseline;
  if (b?.profile) {
    const p = b.profile;
    const lines = [`step ${s.id}, profile against ${b.file}${b.updated ? ' (updated)' : ''} (${p.samples} samples, baseline ${p.baselineSamples}; ${p.diff}):`];
    for (const f of p.grew) lines.push(`  ↑ ${f.function}: ${f.before}% → ${f.after}% of samples`);
    for (const f of p.shrank) lines.push(`  ↓ ${f.function}: ${f.before}% → ${f.after}% of samples`);
    return lines;
  }
  if (!b || (!b.added.length && !b.removed.length)) return [];
  const lines = [`step ${s.id}, baseline ${b.file}${b.updated ? ' (updated)' : ''}:`];
  for (const k of b.added.slice(0, 50)) lines.push(`  + ${k}`);
  if (b.added.length > 50) lines.push(`  + … ${b.added.length - 50} more`);
  for (const k of b.removed.slice(0, 50)) lines.push(`  - ${k}`);
  if (b.removed.length > 50) lines.push(`  - … ${b.removed.length - 50} more`);
  return lines;
}

export function renderTerminal(summary: Summary, outDir: string): string {
  const rows = [HEAD, ...stepRows(summary)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows.map((r) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
  const lines = [`${summary.recipe}: ${STATUS_WORDS[summary.status] ?? summary.status} in ${formatMs(summary.durationMs)}${summary.error ? ` — ${summary.error}` : ''}`, ...table];
  if (summary.workload) lines.push(`  workload: ${oneLine(summary.workload.command)} → exit ${summary.workload.exitCode}${summary.workload.timedOut ? ' (timed out)' : ''}${underSeccomp(summary.workload)}`);
  for (const s of summary.steps) lines.push(...baselineLines(s).map((l) => `  ${l}`));
  if (summary.assertions.length) {
    if (summary.status === 'could_not_trace') {
      lines.push(`assertions: ${summary.assertions.length} not evaluated (nothing could be traced here)`);
    } else {
      lines.push('assertions:');
      for (const a of summary.assertions) {
        lines.push(`  ${TERMINAL[statusOf(a)]} ${a.name}${a.passed ? '' : ` — ${a.message}`}`);
        if (a.evidence) for (const l of evidenceLines(a.evidence)) lines.push(`      ${l}`);
      }
    }
  }
  if (summary.actions?.length) lines.push('actions (they do not change the verdict):', ...actionLines(summary.actions));
  if (summary.status !== 'passed' && summary.reasons?.length) {
    lines.push(summary.status === 'could_not_trace' ? 'could not trace (exit 3):' : 'why:');
    for (const r of summary.reasons) lines.push(`  - ${r}`);
  }
  lines.push(`artifacts: ${outDir}/ (summary.json, report.md${summary.steps.flatMap((s) => s.artifacts).map((a) => `, ${a}`).join('')})`);
  return lines.join('\n') + '\n';
}

/** `, under seccomp profile P (errno mode, 46 syscalls)`, when the workload ran under one. */
function underSeccomp(workload: WorkloadSummary): string {
  const s = workload.seccomp;
  return s ? `, under seccomp profile ${s.profile} (${s.mode} mode, ${s.syscalls} syscalls, sha256 ${s.sha256.slice(0, 12)})` : '';
}

/** A table cell: Markdown and HTML that workload text may hold are shown, not rendered. */
export function cell(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|~#!])/g, '\\$1')
    .replace(/\r?\n|\r/g, ' ');
}

/** A fenced code block that no backtick run inside can close. */
export function fenced(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${text.replace(/\n$/, '')}\n${fence}`;
}

export function renderMarkdown(summary: Summary): string {
  const out = [
    `# ${cell(summary.recipe)}: ${summary.status}`,
    '',
    `Node ${cell(summary.node)} (Linux ${cell(summary.kernel)}), started ${summary.startedAt}, took ${formatMs(summary.durationMs)}.`,
  ];
  if (summary.error) out.push('', '**Error:**', '', fenced(summary.error));
  if (summary.workload) out.push('', `Workload exited with ${summary.workload.exitCode}${summary.workload.timedOut ? ' (timed out)' : ''}${cell(underSeccomp(summary.workload))}:`, '', fenced(summary.workload.command));
  out.push('', `| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`);
  for (const r of stepRows(summary)) out.push(`| ${r.map(cell).join(' | ')} |`);
  if (summary.status !== 'passed' && summary.reasons?.length) {
    out.push('', summary.status === 'could_not_trace' ? '## Could not trace here' : '## Why it did not pass', '');
    for (const r of summary.reasons) out.push(`- ${cell(r)}`);
  }
  for (const s of summary.steps) if (s.report) out.push('', `## ${s.id} (${s.gadget})`, '', s.report.trimEnd());
  if (summary.assertions.length) {
    out.push('', '## Assertions', '');
    for (const a of summary.assertions) {
      out.push(`- ${MARKDOWN[statusOf(a)]} ${cell(a.name)}${a.passed ? '' : `: ${cell(a.message)}`}`);
    }
    for (const a of summary.assertions.filter((x) => x.evidence)) out.push('', `Evidence for ${cell(a.name)}:`, '', fenced(evidenceLines(a.evidence!).join('\n')));
  }
  const baselines = summary.steps.flatMap(baselineLines);
  if (baselines.length) out.push('', '## Baselines', '', fenced(baselines.join('\n')));
  out.push(...actionsMarkdown(summary.actions ?? []));
  return out.join('\n') + '\n';
}

function actionWhat(a: ActionSummary): string {
  return a.command ? a.command.join(' ') : [a.script ?? '', ...(a.args ?? [])].join(' ');
}

/** The actions the verdict called for: one row each, and the output's tail of those that did not end well. */
function actionsMarkdown(actions: ActionSummary[]): string[] {
  if (!actions.length) return [];
  const out = ['', '## Actions', '', 'They ran after the verdict and do not change it.', '', '| hook | action | status | exit | took | as | command | log |', '|---|---|---|---|---|---|---|---|'];
  for (const a of actions) {
    const row = [a.hook, a.name, a.status, a.exitCode === null ? '-' : String(a.exitCode), formatMs(a.durationMs), a.user?.name ?? '-', actionWhat(a), a.log ?? '-'];
    out.push(`| ${row.map(cell).join(' | ')} |`);
  }
  for (const a of actions.filter((x) => x.status !== 'ok')) {
    out.push('', `${cell(a.name)}: ${cell(a.reason ?? a.status)}`);
    if (a.output_tail) out.push('', fenced(a.output_tail));
  }
  return out;
}

/** One line per action for the terminal report. */
export function actionLines(actions: ActionSummary[]): string[] {
  return actions.map((a) => `  ${a.hook} ${a.name}: ${a.status}${a.reason ? ` — ${a.reason}` : ''} (took ${formatMs(a.durationMs)}${a.log ? `, output in ${a.log}` : ''})`);
}
