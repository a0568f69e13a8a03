/**
 * report.md renders as the Markdown it means whatever the workload's text holds:
 * backtick runs cannot close its fences, pipes cannot split its table cells, HTML and
 * emphasis show as text. Parsed with markdown-it (CommonMark + tables) to see what a
 * renderer sees.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import MarkdownIt from 'markdown-it';
import { fenced, renderMarkdown } from '../../src/runner/report.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { notRoot, readJson, runCli, tempDir, writeRecipe } from './cli-helpers.ts';

const md = new MarkdownIt();
const HOSTILE = '````` | a | b |\n<script>x</script> *em* [l](http://x) \\| # h';

function tokens(markdown: string) {
  return md.parse(markdown, {});
}

test('a fence is longer than any backtick run inside, so the block holds the text exactly', () => {
  const [block] = tokens(fenced(HOSTILE)).filter((t) => t.type === 'fence');
  assert.equal(block.content, `${HOSTILE}\n`);
});

test('table cells and list items escape what workload text may hold', () => {
  const summary: Summary = {
    schema_version: 1, tool_version: '0', recipe: 'r', file: 'r.yaml', status: 'failed', node: 'n', kernel: 'k', startedAt: 't', durationMs: 1,
    workload: { command: HOSTILE, exitCode: 1 },
    steps: [{ id: 'a', gadget: 'trace/open', status: 'failed', reason: HOSTILE, events: 0, lost: 0, artifacts: [], durationMs: 0 }],
    assertions: [{ name: 'n', passed: false, status: 'failed', message: HOSTILE, evidence: { expr: 'x', value: HOSTILE, events: [{ pid: 1, args: [HOSTILE] }], total: 1 } }],
    reasons: [HOSTILE],
  };
  const ts = tokens(renderMarkdown(summary));
  assert.equal(ts.filter((t) => t.type === 'html_block' || t.type === 'html_inline').length, 0);
  // one header row and one step row, each with its 8 cells, the hostile one whole
  const rows = ts.filter((t) => t.type === 'tr_open').length;
  assert.equal(rows, 2);
  assert.equal(ts.filter((t) => t.type === 'td_open').length, 8);
  const cells = ts.filter((t, i) => t.type === 'inline' && ts[i - 1]?.type === 'td_open').map((t) => t.content);
  assert.equal(md.renderInline(cells[7]), md.utils.escapeHtml(HOSTILE.replace('\n', ' ')));
  // the workload command and the evidence are fences that hold the text as it is
  const fences = ts.filter((t) => t.type === 'fence').map((t) => t.content);
  assert.ok(fences.includes(`${HOSTILE}\n`), 'the workload command, verbatim');
  assert.ok(fences.some((f) => f.includes(`args ${HOSTILE}`)), 'the evidence, verbatim');
});

test('a real run whose evidence holds backticks and pipes renders it verbatim in report.md', { skip: notRoot }, async () => {
  const dir = tempDir();
  const recipe = writeRecipe(dir, 'md.yaml', `name: md
run: "/bin/echo '\`\`\`\`x' '| a | b |' '<b>hi</b>' > /dev/null"
steps:
  - { id: execs, gadget: trace/exec }
assertions:
  - name: no echo
    expr: '$count(steps.execs[comm = "echo"]) = 0'
`);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', recipe, '--out', out]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const report = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  const ts = tokens(report);
  assert.equal(ts.filter((t) => t.type.startsWith('html')).length, 0);
  const evidence = ts.filter((t) => t.type === 'fence').map((t) => t.content).find((c) => c.includes('events it picked'));
  assert.ok(evidence?.includes('args /bin/echo ````x | a | b | <b>hi</b>'), evidence);
  assert.equal(readJson(path.join(out, 'summary.json')).assertions[0].evidence.events[0].args[1], '````x');
});
