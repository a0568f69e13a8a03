/**
 * The kernel matrix's results (build/vm-matrix/KERNEL/, what test/vm/guest.mjs wrote on a
 * kernel), the record of them the matrix compares with (test/vm/expected.json), and the table
 * made from the record: gadget × kernel → the hook used or why not. scripts/vm-table.mjs writes
 * that table into README.md and docs/kernels.md; test/docs/kernel-table.test.ts fails when
 * either disagrees with the record, and the matrix fails when the record disagrees with a
 * kernel. So the README says what the kernels said, through one file that a person reviews.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gadgets } from '../../src/steps/index.ts';
import { requirementName } from '../../src/steps/hooks.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const RESULTS = path.join(REPO, 'build', 'vm-matrix');
export const EXPECTED = path.join(REPO, 'test', 'vm', 'expected.json');
/** one line per kernel run, kept across runs: the figures in docs/kernels.md */
export const HISTORY = path.join(RESULTS, 'history.ndjson');

/** What is recorded of one kernel. */
export interface KernelRecord {
  /** the kernel the record was made on (`uname -r`): shown, not compared (a rebuilt package keeps its results) */
  release?: string;
  /** id → "ok", "ok: VARIANT" (a gadget with hook variants: the one used) or "unsupported: REASON", as `gadgets --json` says it */
  gadgets: Record<string, string>;
  /** file → test name (suite > test) → "pass" | "skip: REASON" | "fail: known — WHY" */
  tests: Record<string, Record<string, string>>;
  /** the quickstart's summary status, then its reasons after ": " ("passed") */
  quickstart: string;
}

export interface MatrixRecord {
  why?: string;
  kernels: Record<string, KernelRecord>;
}

/** a line of reporter.mjs: name is the path from the file's suite down (" > "), test the test's own */
export interface TestLine { file: string | null; name: string; test: string; suite?: true; status: string; reason?: string; error?: string; ms: number }

export const KNOWN = 'fail: known — ';

export function readRecord(file = EXPECTED): MatrixRecord {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Kernel names in version order: 6.1 before 6.12 before 6.18. */
export function byVersion(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The probe's reason names its log file by object hash: a rebuilt object is a new path, not a new reason. */
export function withoutLogPath(reason = ''): string {
  return reason.replace(/; full log in \S+$/, '');
}

interface GadgetRow { id: string; supported: boolean; reason?: string; variant?: string }

/**
 * What `gadgets --json` said on a kernel, in the record's words. The hook used is part of the
 * answer for gadgets that have hook variants: which one a kernel gets is what they are for.
 */
export function gadgetStatuses(dir: string): Record<string, string> {
  const g = JSON.parse(fs.readFileSync(path.join(dir, 'gadgets.json'), 'utf8'));
  if (g.exitCode !== 0) throw new Error(`gadgets --json failed in ${dir}: ${g.stderr}`);
  return Object.fromEntries((g.gadgets as GadgetRow[]).map((x) => [x.id, statusOf(x)]));
}

function statusOf(row: GadgetRow): string {
  if (!row.supported) return `unsupported: ${withoutLogPath(row.reason)}`;
  const def = (gadgets as Record<string, GadgetDefinition>)[row.id];
  return def?.variants?.length && row.variant ? `ok: ${row.variant}` : 'ok';
}

export function testLines(dir: string): TestLine[] {
  const file = path.join(dir, 'tests.ndjson');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** What a result line says, in the record's words; a failure matches any "fail: …" the record has for it. */
export function outcome(line: TestLine, want: string | undefined): string {
  if (line.status === 'skip') return `skip: ${line.reason}`;
  if (line.status === 'fail') return want?.startsWith('fail') ? want : `${KNOWN}${firstLine(line.error)}`;
  return line.status;
}

/** A failure's first line, without the per-run log path, and libbpf's own words when it gave them. */
function firstLine(error = 'failed'): string {
  const lines = error.split('\n');
  const main = withoutLogPath(lines[0]);
  const detail = lines.map((l) => l.trim()).find((l) => /^libbpf: (extern|map '|prog '.*: (BPF program load failed|failed to attach))/.test(l));
  return detail ? `${main} (${detail.replace(/^libbpf: /, '')})` : main;
}

/**
 * A kernel's results (a folder of build/vm-matrix) as the record would hold them; the notes of
 * known failures in `before` stay while those tests still fail (a new failure gets its error's
 * first line: say why before committing it).
 */
export function recordOf(dir: string, before?: KernelRecord): KernelRecord {
  const tests: KernelRecord['tests'] = {};
  for (const line of testLines(dir)) {
    if (!line.file || line.suite) continue;
    (tests[line.file] ??= {})[line.name] = outcome(line, before?.tests[line.file]?.[line.name]);
  }
  const qs = JSON.parse(fs.readFileSync(path.join(dir, 'quickstart.json'), 'utf8'));
  const kernel = JSON.parse(fs.readFileSync(path.join(dir, 'kernel.json'), 'utf8'));
  return { release: kernel.release, gadgets: gadgetStatuses(dir), tests, quickstart: [qs.status, ...qs.reasons].join(': ') };
}

// ---- the table ---------------------------------------------------------------------------

/** Test files outside test/steps/ that stand for a gadget (selection.json's gadgetOf): test/egress/kill.test.ts is audit/egress's. */
const GADGET_OF: Record<string, string> = JSON.parse(fs.readFileSync(path.join(REPO, 'test/vm/selection.json'), 'utf8')).gadgetOf ?? {};
/** The test file of a gadget: test/steps/top-blockio.test.ts is top/block-io's, and the files gadgetOf gives it. */
const squash = (s: string) => s.replace(/[^a-z]/g, '');
const isGadgetFile = (file: string, id: string) => GADGET_OF[file] === id || (file.startsWith('test/steps/') && squash(path.basename(file, '.test.ts')) === squash(id));

/** A gadget's hooks in a few words: its variants in order of preference, else what it requires. */
export function hooksOf(def: GadgetDefinition): string {
  if (def.variants?.length) return def.variants.map((v) => v.name).join(', else ');
  if (def.mode === 'packet') return 'socket filter';
  // syscalls/sys_enter_X and sys_exit_X are one pair of hooks
  const pairs: string[] = [];
  const other: string[] = [];
  for (const r of def.requires.filter((x) => !('optional' in x && x.optional))) {
    const m = 'tracepoint' in r ? /^syscalls\/sys_(?:enter|exit)_(\w+)$/.exec(r.tracepoint) : null;
    if (m) {
      if (!pairs.includes(m[1])) pairs.push(m[1]);
    } else other.push(requirementName(r));
  }
  return [...(pairs.length ? [`syscalls ${pairs.join(', ')} (enter/exit tracepoints)`] : []), ...other].join('; ');
}

/** One kernel's cell for a gadget: the hook used (a variant's name), ok, why not, or the known failure of its test. */
function gadgetCell(id: string, k: KernelRecord): string {
  const status = k.gadgets[id];
  if (status === undefined) return 'not listed';
  if (status.startsWith('unsupported: ')) return `unsupported: ${status.slice('unsupported: '.length).replace(`${id}: unsupported here — `, '')}`;
  const mine = Object.entries(k.tests).filter(([file]) => isGadgetFile(file, id)).flatMap(([, t]) => Object.values(t));
  const failed = mine.find((o) => o.startsWith('fail'));
  const hook = status === 'ok' ? 'ok' : status.slice('ok: '.length);
  if (failed) return `**fails**${status === 'ok' ? '' : ` (through ${hook})`}: ${failed.startsWith(KNOWN) ? failed.slice(KNOWN.length) : failed}`;
  if (!mine.length) return `${hook} (no test in the matrix)`;
  if (mine.every((o) => o.startsWith('skip'))) return `${hook}; its test skipped: ${mine[0].slice('skip: '.length)}`;
  return hook;
}

/** A test file's cell: how many passed, and each known failure's note. */
function fileCell(file: string, k: KernelRecord): string {
  const mine = Object.values(k.tests[file] ?? {});
  if (!mine.length) return 'not run';
  const pass = mine.filter((o) => o === 'pass').length;
  const skip = mine.filter((o) => o.startsWith('skip')).length;
  const fails = mine.filter((o) => o.startsWith('fail')).map((o) => (o.startsWith(KNOWN) ? o.slice(KNOWN.length) : o));
  return [`${pass} pass`, ...(skip ? [`${skip} skip`] : []), ...fails.map((f) => `**fails**: ${f}`)].join(', ');
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** gadget × kernel → the hook used or why not, then the other test files and the quickstart, from the record. */
export function kernelTable(record: MatrixRecord = readRecord()): string {
  const names = Object.keys(record.kernels).sort(byVersion);
  const ks = names.map((n) => record.kernels[n]);
  const head = `| gadget | hooks (in order of preference) | ${names.map((n, i) => `${n}${ks[i].release ? ` (${ks[i].release})` : ''}`).join(' | ')} |`;
  const rule = `|---|---|${names.map(() => '---|').join('')}`;
  const defs = Object.values(gadgets as Record<string, GadgetDefinition>);
  const rows = defs.map((def) => `| ${def.id} | ${cell(hooksOf(def))} | ${ks.map((k) => cell(gadgetCell(def.id, k))).join(' | ')} |`);
  const files = [...new Set(ks.flatMap((k) => Object.keys(k.tests)))].filter((f) => !f.startsWith('test/steps/') && !(f in GADGET_OF)).sort();
  const other = files.map((f) => `| ${f} | — | ${ks.map((k) => cell(fileCell(f, k))).join(' | ')} |`);
  const qs = `| the quickstart recipe | — | ${ks.map((k) => cell(k.quickstart)).join(' | ')} |`;
  return [head, rule, ...rows, ...other, qs].join('\n');
}

// ---- generated sections ---------------------------------------------------------------------

export const TABLE_MARKS = ['<!-- kernel table, generated by scripts/vm-table.mjs from test/vm/expected.json: begin -->', '<!-- kernel table: end -->'] as const;
export const FIGURES_MARKS = ['<!-- figures, generated by scripts/vm-table.mjs from build/vm-matrix/history.ndjson: begin -->', '<!-- figures: end -->'] as const;

/** The text between a document's two marks (without the newlines that frame it), or undefined. */
export function section(doc: string, [begin, end]: readonly [string, string]): string | undefined {
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) return undefined;
  return doc.slice(a + begin.length, b).replace(/^\n/, '').replace(/\n$/, '');
}

/** The document with `body` between its marks. */
export function withSection(doc: string, [begin, end]: readonly [string, string], body: string, where: string): string {
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${where} lacks the marks ${begin} … ${end}`);
  return `${doc.slice(0, a + begin.length)}\n${body}\n${doc.slice(b)}`;
}
