/**
 * GitHub Actions: workflow-command annotations that point at the recipe line
 * of a failed assertion, step or recipe error, and the Markdown report
 * appended to $GITHUB_STEP_SUMMARY. Text from the workload (exec args,
 * paths) reaches these: it is escaped the way the runner unescapes, and
 * plain output that may carry it is fenced with ::stop-commands:: so a
 * traced `echo ::error::x` cannot speak to the runner.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { LoadedRecipe, Problem } from '../../runner/recipe.ts';
import { evidenceLines } from '../../runner/evidence.ts';
import type { Summary } from '../../runner/summary.ts';
import { lostPastAllowed, NOT_CAPTURED } from '../../runner/verdict.ts';

export function onGithubActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

/** A command's message: the runner unescapes %25, %0D, %0A. */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** A command's property value (file=, title=): also ':' and ','. */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

interface Annotation {
  level: 'error' | 'warning';
  file: string;
  line?: number;
  col?: number;
  title: string;
  message: string;
}

function command(a: Annotation): string {
  const props = [`file=${escapeProperty(a.file)}`];
  if (a.line !== undefined) props.push(`line=${a.line}`);
  if (a.col !== undefined) props.push(`col=${a.col}`);
  props.push(`title=${escapeProperty(a.title)}`);
  return `::${a.level} ${props.join(',')}::${escapeData(a.message)}\n`;
}

/** Annotations for what made a run fail: failed assertions and steps, lost or truncated events. */
export function runAnnotations(summary: Summary, loaded: LoadedRecipe): string {
  const out: Annotation[] = [];
  summary.steps.forEach((s, i) => {
    const at = loaded.positions.steps[i];
    const base = { file: loaded.file, line: at?.line, col: at?.col };
    const optional = loaded.recipe.steps[i]?.optional === true;
    if (NOT_CAPTURED.has(s.status) || s.status === 'truncated') {
      out.push({ ...base, level: optional && s.status !== 'truncated' ? 'warning' : 'error', title: `step ${s.id} ${s.status}`, message: s.reason ?? s.status });
    } else if (lostPastAllowed(s)) {
      out.push({ ...base, level: 'error', title: `step ${s.id} lost events`, message: `${s.lost} events were lost in the kernel: raise the step's buffer or narrow its filter` });
    }
    if (s.baseline?.added.length && !s.baseline.updated) {
      out.push({ ...base, level: 'error', title: `step ${s.id}: new keys not in ${s.baseline.file}`, message: s.baseline.added.slice(0, 50).join('\n') });
    }
  });
  summary.assertions.forEach((a, i) => {
    const status = (a as { status?: string }).status ?? (a.passed ? 'passed' : 'failed');
    if (status === 'passed' || status === 'skipped') return;
    const at = loaded.positions.assertions[i];
    const message = [a.message, ...(a.evidence ? evidenceLines(a.evidence) : [])].join('\n');
    out.push({ level: 'error', file: loaded.file, line: at?.line, col: at?.col, title: `assertion failed: ${a.name}`, message });
  });
  if (summary.workload?.exitExpected === false && !summary.workload.timedOut) {
    out.push({ level: 'error', file: loaded.file, title: 'the workload failed', message: `the workload exited with ${summary.workload.exitCode} (expect_exit allows other codes)` });
  }
  if (summary.error) out.push({ level: 'error', file: loaded.file, title: 'gadget-run could not run the recipe', message: summary.error });
  return out.map(command).join('');
}

/** Annotations for recipe errors, each at its file:line:col. */
export function problemAnnotations(problems: Problem[]): string {
  return problems
    .map((p) => {
      const place = p.file !== undefined && p.line !== undefined ? { file: p.file, line: p.line, col: p.col } : { file: p.where };
      return command({ level: 'error', ...place, title: 'gadget-run: bad recipe', message: p.path ? `${p.path}: ${p.message}` : p.message });
    })
    .join('');
}

/**
 * Text that may carry workload output, between ::stop-commands::TOKEN and
 * ::TOKEN::, so the runner reads none of it as a command. The token is random
 * per call: a traced process cannot guess it to end the fence early.
 */
export function fenceCommands(text: string, token = crypto.randomBytes(16).toString('hex')): string {
  return `::stop-commands::${token}\n${text}${text.endsWith('\n') ? '' : '\n'}::${token}::\n`;
}

/** Append the Markdown report to the job's step summary, when the runner gave one. */
export function appendStepSummary(markdown: string, env: NodeJS.ProcessEnv = process.env): void {
  const file = env.GITHUB_STEP_SUMMARY;
  if (file) fs.appendFileSync(file, markdown.endsWith('\n') ? `${markdown}\n` : `${markdown}\n\n`);
}
