/**
 * JUnit XML, the report format every CI system reads: one testsuite per
 * run, one testcase per step (failed, unsupported, lost or truncated events
 * are failures) and one per assertion, with the evidence in the failure text.
 */
import junitModule, { type Builder } from 'junit-report-builder';
import { evidenceLines } from '../evidence.ts';
import type { Summary } from '../summary.ts';
import { lostPastAllowed, NOT_CAPTURED } from '../verdict.ts';

/** XML 1.0 cannot hold most control characters at all, escaped or not: they become U+FFFD. */
export function xmlSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '\ufffd');
}

// a CommonJS package whose types declare an ES default export: at run time the import is the builder itself
const junit = ((junitModule as unknown as { default?: Builder }).default ?? junitModule) as unknown as Builder;

type StepRow = Summary['steps'][number];
type AssertionRow = Summary['assertions'][number];

/** Why a step fails a CI job, or undefined when it does not. */
function stepFailure(s: StepRow): string | undefined {
  if (NOT_CAPTURED.has(s.status) || s.status === 'truncated') return `${s.status}: ${s.reason ?? ''}`.trim();
  if (lostPastAllowed(s)) return `${s.lost} events were lost in the kernel (ring buffer full)`;
  if (s.baseline?.added.length && !s.baseline.updated) return `${s.baseline.added.length} new keys not in the baseline ${s.baseline.file}\n${s.baseline.added.map((k) => `+ ${k}`).join('\n')}`;
  return undefined;
}

function assertionState(a: AssertionRow): 'passed' | 'failed' | 'skipped' {
  const status = (a as { status?: string }).status;
  if (status === 'skipped') return 'skipped';
  if (status) return status === 'passed' ? 'passed' : 'failed';
  return a.passed ? 'passed' : 'failed';
}

/** The first line as the failure's message, the whole text (evidence) as its body. */
function fail(tc: ReturnType<Builder['testCase']>, text: string): void {
  tc.failure(xmlSafe(text.split('\n')[0]));
  if (text.includes('\n')) tc.stacktrace(xmlSafe(text));
}

export function renderJunit(summary: Summary): string {
  const builder = junit.newBuilder();
  const suite = builder
    .testSuite()
    .name(xmlSafe(`gadget-run ${summary.recipe}`))
    .timestamp(summary.startedAt)
    .time(summary.durationMs / 1000)
    .property('node', xmlSafe(summary.node))
    .property('kernel', xmlSafe(summary.kernel))
    .property('status', summary.status);
  const className = xmlSafe(summary.recipe);
  for (const s of summary.steps) {
    const tc = suite.testCase().className(`${className}.steps`).name(xmlSafe(`${s.id} (${s.gadget})`)).time(s.durationMs / 1000);
    const failure = stepFailure(s);
    if (failure && s.optional && s.status !== 'truncated' && !lostPastAllowed(s) && !s.baseline?.added.length) tc.skipped();
    else if (failure) fail(tc, failure);
    tc.standardOutput(xmlSafe(`${s.events} events, ${s.lost} lost; artifacts: ${s.artifacts.join(', ') || 'none'}`));
  }
  for (const a of summary.assertions) {
    const tc = suite.testCase().className(`${className}.assertions`).name(xmlSafe(a.name));
    const state = assertionState(a);
    if (state === 'skipped') tc.skipped();
    else if (state === 'failed') fail(tc, [a.message, ...(a.evidence ? evidenceLines(a.evidence) : [])].join('\n'));
  }
  if (summary.workload) {
    const tc = suite.testCase().className(`${className}.workload`).name(xmlSafe(summary.workload.command.split('\n')[0]));
    if (summary.workload.timedOut) tc.failure('the workload timed out');
    else if (summary.workload.exitExpected === false) tc.failure(`the workload exited with ${summary.workload.exitCode}, which expect_exit does not allow`);
    tc.standardOutput(`exit code ${summary.workload.exitCode}`);
  }
  if (summary.error) suite.testCase().className(className).name('run').error(xmlSafe(summary.error));
  return builder.build();
}
