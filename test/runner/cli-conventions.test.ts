/**
 * The CLI conventions of issue 6, as a user of ig, kubectl and CI meets them:
 * -o is a format (never a folder), recipes from stdin, inputs that cannot
 * inject, `-- CMD`, the one-liner, help/version, `gadgets ID`, EPIPE, the
 * progress line on a terminal and in a log, one-pass validation, apiVersion,
 * gadget-run not tracing itself. Kernel tests need root.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseRecipe, RecipeError, MAX_RECIPE_BYTES, type LoadedRecipe, type LoadOptions } from '../../src/runner/recipe.ts';
import { inputEnvName, shellReference } from '../../src/runner/inputs.ts';
import { PLAIN_EVERY_MS, Progress, TTY_EVERY_MS, useColour } from '../../src/cli/progress.ts';
import type { ObservedStep } from '../../src/runner/run.ts';
import { localRegistry } from '../helpers/npm-registry.ts';
import { BIN, notRoot, readJson, readNdjsonFile, ROOT, runCli, startCli, tempDir, writeRecipe, type CliResult } from './cli-helpers.ts';

const VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

/** The CLI with `input` on its stdin. */
function runWithStdin(args: string[], input: string | Buffer, opts: { cwd?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {}); // a refused, too large recipe closes stdin early
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

function problemsOf(text: string, opts: LoadOptions = {}): string[] {
  try {
    parseRecipe(text, 'r.yaml', undefined, undefined, opts);
  } catch (err) {
    if (err instanceof RecipeError) return err.message.split('\n');
    throw err;
  }
  return [];
}

function load(text: string, opts: LoadOptions = {}): LoadedRecipe {
  return parseRecipe(text, 'r.yaml', undefined, undefined, opts);
}

const INPUTS = `name: inputs
inputs:
  word: {type: string, default: hello, description: what to say}
  secs: {type: number, default: 2}
  quick: {type: boolean, default: false}
  wait: {type: duration, default: 1m30s}
`;

describe('-o is the output format, --out (-O) the folder', () => {
  test('-o with anything but json|columns is refused, pointing at --out; nothing is written', async () => {
    const dir = tempDir();
    const recipe = writeRecipe(dir, 'r.yaml', 'name: r\nrun: "true"\nsteps:\n  - id: a\n    gadget: trace/exec\n');
    for (const value of ['json-dir', 'out', path.join(dir, 'x')]) {
      const r = await runCli(['run', recipe, '-o', value], { cwd: dir });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /-o is the output format \(json or columns\), as in ig and kubectl; the output folder is --out DIR \(-O DIR\)/);
      assert.deepEqual(fs.readdirSync(dir), ['r.yaml'], `-o ${value} made no folder`);
    }
  });

  test('-o json prints every event as NDJSON with its step on stdout, the report goes to stderr; -O is --out', { skip: notRoot }, async () => {
    const dir = tempDir();
    const tag = `ojson${process.pid}x${Date.now()}`;
    const recipe = writeRecipe(dir, 'r.yaml', `name: r\nrun: /bin/echo ${tag} > /dev/null\nsteps:\n  - id: execs\n    gadget: trace/exec\n    outputs: [execs.ndjson]\n`);
    const out = path.join(dir, 'out');
    const r = await runCli(['run', recipe, '-o', 'json', '-O', out]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2, r.stdout);
    assert.ok(lines.every((e) => e.step === 'execs'), 'every line names its step');
    assert.ok(lines.some((e) => e.args?.includes(tag)), 'the workload exec is printed');
    // the same events as the artifact, in the same order
    assert.deepEqual(lines.map(({ step, ...e }) => e), readNdjsonFile(path.join(out, 'execs.ndjson')));
    assert.match(r.stderr, /r: PASSED/);
  });
});

describe('recipes from stdin, inputs, -- CMD', () => {
  test('validate - reads the recipe from stdin; a recipe larger than the limit is refused there too', async () => {
    const ok = await runWithStdin(['validate', '-'], 'name: s\nrun: "true"\nsteps:\n  - id: a\n    gadget: trace/exec\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /<stdin>: ok \(1 step\) — gadget-run\/v1 \(the default\)/);
    const bad = await runWithStdin(['validate', '-'], 'name: s\nsteps:\n  - id: a\n    gadget: trace/exek\n');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^<stdin>:4:13 steps\[0\]\.gadget: unknown gadget "trace\/exek"/m);
    const huge = await runWithStdin(['run', '-'], Buffer.alloc(MAX_RECIPE_BYTES + 4096, 'a'));
    assert.equal(huge.code, 2);
    assert.match(huge.stderr, /<stdin> the recipe is larger than 1MiB/);
  });

  test('inputs: defaults, --set, typed whole values, and errors that list the declared inputs', () => {
    const text = `${INPUTS}duration: \${{ inputs.wait }}
steps:
  - id: a
    gadget: trace/open
    description: say \${{ inputs.word }} for \${{ inputs.secs }}s
    duration: \${{ inputs.secs }}
    optional: \${{ inputs.quick }}
`;
    const d = load(text);
    assert.equal(d.recipe.steps[0].description, 'say hello for 2s');
    assert.equal(d.recipe.steps[0].duration, 2, 'a whole-value reference takes the number type');
    assert.equal(d.recipe.steps[0].optional, false);
    assert.equal(d.recipe.duration, '1m30s');
    const s = load(text, { inputs: { word: 'bye', secs: '0.5', quick: 'true' } });
    assert.deepEqual([s.recipe.steps[0].description, s.steps[0].durationMs, s.recipe.steps[0].optional], ['say bye for 0.5s', 500, true]);

    assert.deepEqual(problemsOf(text, { inputs: { wrod: 'x' } }), ['r.yaml:2:1 inputs: --set wrod: no such input (declared: word, secs, quick, wait)']);
    assert.deepEqual(problemsOf(text, { inputs: { secs: 'many', quick: 'yes', wait: '3 weeks' } }), [
      'r.yaml:4:3 inputs.secs: input secs: "many" is not a number',
      'r.yaml:5:3 inputs.quick: input quick: "yes" is not a boolean (true or false)',
      'r.yaml:6:3 inputs.wait: input wait: "3 weeks" is not a duration (write 500ms, 30s, 1m30s, 5m, 1h or 2d)',
    ]);
    assert.deepEqual(problemsOf('name: x\ninputs:\n  need: {type: string}\nrun: echo ${{ inputs.need }} ${{ inputs.nope }} ${{ env.HOME }}\nsteps:\n  - id: a\n    gadget: trace/exec\n'), [
      'r.yaml:3:3 inputs.need: input need has no default: set it with --set need=VALUE',
      'r.yaml:4:6 run: ${{ inputs.nope }}: no such input (declared: need)',
      'r.yaml:4:6 run: ${{ env.HOME }}: only ${{ inputs.NAME }} can be used here',
    ]);
    assert.deepEqual(problemsOf('name: x\ninputs:\n  n: {type: number, default: "2"}\nsteps:\n  - id: a\n    gadget: snapshot/process\n'), ['r.yaml:3:30 inputs.n.default: input n: the default "2" is not a number']);
  });

  test('an input cannot inject: YAML is parsed before, run gets an env reference, JSONata a literal, a filter no extra predicate', () => {
    const hostile = `x"\n]} $(touch /tmp/pwned) ' \\, "`;
    const text = `name: x
inputs:
  v: {type: string, default: ""}
run: echo \${{ inputs.v }} "in \${{ inputs.v }} double" 'in \${{ inputs.v }} single'
steps:
  - id: a
    gadget: trace/exec
    filter: comm==\${{ inputs.v }}
    transform: '$[comm = \${{ inputs.v }}]'
assertions:
  - name: \${{ inputs.v }}
    expr: '$count(steps.a) = 0 or \${{ inputs.v }} = ""'
`;
    const l = load(text, { inputs: { v: hostile } });
    const ref = '${' + inputEnvName('v') + '}';
    assert.equal(l.recipe.run, `echo "${ref}" "in ${ref} double" 'in '"${ref}"' single'`);
    assert.deepEqual(l.env, { GADGET_RUN_INPUT_V: hostile });
    assert.equal(l.recipe.steps[0].transform, `$[comm = ${JSON.stringify(hostile)}]`);
    assert.equal(l.recipe.assertions![0].expr, `$count(steps.a) = 0 or ${JSON.stringify(hostile)} = ""`);
    assert.equal(l.recipe.assertions![0].name, hostile, 'plain text is the value itself');
    assert.deepEqual(l.steps[0].filter.map((p) => [p.field, p.op, p.value]), [['comm', '==', hostile.trim()]], 'one predicate, the comma kept in the value');
    assert.equal(l.recipe.steps.length, 1, 'no YAML structure from the value');
    // the shell sees the value as one word wherever it stands
    const run = spawnSync('/bin/sh', ['-c', l.recipe.run!.replace(/^echo/, 'printf "[%s]"')], { env: { ...process.env, ...l.env }, encoding: 'utf8' });
    assert.equal(run.stdout, `[${hostile}][in ${hostile} double][in ${hostile} single]`);
  });

  test('shellReference quotes for where the reference stands', () => {
    assert.equal(shellReference('echo ', 5, 'V'), '"${V}"');
    assert.equal(shellReference('echo "a ', 8, 'V'), '${V}');
    assert.equal(shellReference("echo 'a ", 8, 'V'), `'"\${V}"'`);
    assert.equal(shellReference('echo \\" ', 8, 'V'), '"${V}"', 'an escaped quote opens nothing');
    assert.equal(shellReference(`echo "it's" `, 12, 'V'), '"${V}"', 'a single quote inside double quotes opens nothing');
  });

  test('run: an input reaches the workload as an environment variable, never as shell text', { skip: notRoot }, async () => {
    const dir = tempDir();
    const marker = path.join(dir, 'pwned');
    const recipe = writeRecipe(dir, 'r.yaml', `name: r
inputs:
  word: {type: string, default: x}
run: printf '<%s>' \${{ inputs.word }}
steps:
  - id: execs
    gadget: trace/exec
`);
    const word = `$(touch ${marker}); \`touch ${marker}\``;
    const r = await runCli(['run', recipe, '--out', path.join(dir, 'out'), '--set', `word=${word}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`<${word}>`), r.stdout);
    assert.ok(!fs.existsSync(marker), 'the value was not run');
  });

  test('run - from stdin with -- CMD: the argv is executed as given, no shell in between', { skip: notRoot }, async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    const argv = ['/bin/echo', 'two words', '$(id)', "it's"];
    const r = await runWithStdin(['run', '-', '--out', out, '--', ...argv], 'name: argv\nrun: exit 7\nsteps:\n  - id: execs\n    gadget: trace/exec\n    outputs: [execs.ndjson]\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0], "two words $(id) it's");
    const execs = readNdjsonFile(path.join(out, 'execs.ndjson'));
    assert.deepEqual(execs.filter((e) => e.comm === 'echo').map((e) => e.args), [argv]);
    const summary = readJson(path.join(out, 'summary.json'));
    assert.equal(summary.workload.exitCode, 0, 'the recipe run (exit 7) was replaced');
    assert.equal(summary.workload.command, `/bin/echo 'two words' '$(id)' 'it'\\''s'`);
  });
});

describe('the one-liner', () => {
  test('trace/exec -- CMD prints NDJSON when stdout is not a terminal and leaves no artifacts without --out', { skip: notRoot }, async () => {
    const dir = tempDir();
    const tag = `one${process.pid}x${Date.now()}`;
    const r = await runCli(['trace/exec', '--', '/bin/sh', '-c', `/bin/echo ${tag} > /dev/null`], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.step === 'exec' && e.comm === 'echo' && e.args[1] === tag), r.stdout);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing written where it ran');
    const kept = path.join(dir, 'kept');
    const k = await runCli(['trace/exec', '--out', kept, '--', '/bin/true']);
    assert.equal(k.code, 0, k.stderr);
    assert.equal(readJson(path.join(kept, 'summary.json')).status, 'passed');
  });

  test('trace/open --filter … --duration: no command, ends after the duration', { skip: notRoot }, async () => {
    const dir = tempDir();
    const file = path.join(dir, `dur${process.pid}`);
    fs.writeFileSync(file, '');
    const cli = startCli(['trace/open', '--filter', `path~dur${process.pid}`, '--duration', '1500ms', '-o', 'json']);
    await cli.stderrUntil(/attached/);
    fs.readFileSync(file);
    const r = await cli.done;
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.path === file && e.pid === process.pid), r.stdout);
  });

  test('a packet gadget with no --duration and no command runs until Ctrl-C, as a stream does', { skip: notRoot }, async () => {
    const cli = startCli(['trace/dns', '-o', 'json']);
    await cli.stderrUntil(/attached/);
    cli.child.kill('SIGINT');
    const r = await cli.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted/);
  });

  test('a bad one-liner says which option is wrong', async () => {
    const f = await runCli(['trace/open', '--filter', 'pidd==1', '--duration', '1s']);
    assert.equal(f.code, 2);
    assert.match(f.stderr, /^gadget-run: --filter: unknown field "pidd"/m);
    const d = await runCli(['trace/open', '--duration', '5x']);
    assert.equal(d.code, 2);
    assert.match(d.stderr, /--duration: "5x" is not a duration/);
    const g = await runCli(['trace/nope', '--', 'true']);
    assert.equal(g.code, 2);
    assert.match(g.stderr, /unknown gadget "trace\/nope" \(known: trace\/exec, /);
    const m = await runCli(['top/file', '--max-rows', '0', '--duration', '1s']);
    assert.equal(m.code, 2);
    assert.match(m.stderr, /^gadget-run: --max-rows: must be >= 1/m);
    const s = await runCli(['top/file', '--sort', '-nope', '--duration', '1s']);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /^gadget-run: --sort: unknown field "nope" of top\/file/m);
    const o = await runCli(['trace/open', '--max-rows', '3', '--duration', '1s']);
    assert.equal(o.code, 2);
    assert.match(o.stderr, /^gadget-run: --max-rows: max_rows is for interval gadgets; trace\/open is a stream gadget/m);
  });

  test('top/file --interval --max-rows: the rows past max_rows are said on stderr, not dropped in silence', { skip: notRoot }, async () => {
    const dir = tempDir();
    const files = [1, 2, 3].map((i) => path.join(dir, `r${i}`));
    for (const f of files) fs.writeFileSync(f, 'x'.repeat(100));
    const r = await runCli(['top/file', '--interval', '1h', '--max-rows', '1', '--sort', '-rbytes', '-o', 'json', '--', 'sh', '-c', 'cat "$@" >/dev/null', 'sh', ...files]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(rows.length, 1, r.stdout);
    const m = /^gadget-run: file: max_rows \(1\) cut (\d+) rows in 1 of 1 intervals: .* by sort \(-rbytes\)/m.exec(r.stderr);
    assert.ok(m && Number(m[1]) >= 3, r.stderr);
  });
});

describe('help, version, gadgets ID, EPIPE', () => {
  test('help, COMMAND --help, help COMMAND, version and --version', async () => {
    const h = await runCli(['help']);
    assert.equal(h.code, 0);
    for (const c of ['run', 'validate', 'gadgets', 'help', 'version', '<category/name>']) assert.match(h.stdout, new RegExp(`^  ${c.replace('/', '\\/')}`, 'm'));
    const runHelp = await runCli(['run', '--help']);
    assert.equal(runHelp.code, 0);
    assert.match(runHelp.stdout, /--set NAME=VALUE/);
    assert.match(runHelp.stdout, /-O, --out DIR/);
    assert.match(runHelp.stdout, /-o, --output FORMAT/);
    assert.equal((await runCli(['help', 'run'])).stdout, runHelp.stdout);
    assert.match((await runCli(['trace/exec', '--help'])).stdout, /--filter FILTER/);
    const nope = await runCli(['help', 'nope']);
    assert.equal(nope.code, 2);
    for (const args of [['version'], ['--version']]) {
      const v = await runCli(args);
      assert.deepEqual([v.code, v.stdout], [0, `${VERSION}\n`]);
    }
    const opt = await runCli(['run', 'r.yaml', '--bogus']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /Unknown option '--bogus'[^\n]*\nusage:\n  gadget-run run /);
  });

  test('gadgets ID: fields with types and descriptions, kernel filters, params, hooks', async () => {
    const r = await runCli(['gadgets', 'trace/open']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^trace\/open \(stream\): /);
    assert.match(r.stdout, /^  \* pid +number +process id/m, 'pid is filtered in the kernel');
    assert.match(r.stdout, /^    path +string +path as passed/m, 'path is not');
    assert.match(r.stdout, /^  tracepoint syscalls\/sys_enter_openat$/m);
    assert.match(r.stdout, /^  tracepoint syscalls\/sys_enter_openat2 \(optional\)/m);
    const withParams = await runCli(['gadgets', 'trace/signal']);
    assert.match(withParams.stdout, /^params:\n  \w+ \(/m);
    const j = await runCli(['gadgets', 'trace/open', '--json']);
    const g = JSON.parse(j.stdout);
    assert.deepEqual(g.fields.find((f: { name: string }) => f.name === 'path'), { name: 'path', type: 'string', description: 'path as passed to the syscall (255 bytes at most)' });
    assert.ok(g.kernelFilters.includes('comm'));
    assert.ok(g.requires.some((h: { tracepoint?: string }) => h.tracepoint === 'syscalls/sys_exit_openat'));
    const unknown = await runCli(['gadgets', 'trace/opn']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown gadget "trace\/opn" \(known: trace\/exec, trace\/open/);
  });

  test('EPIPE: a reader that leaves (gadgets | head -1) ends the CLI quietly with exit 0', async () => {
    for (const args of [['gadgets'], ['gadgets', '--json'], ['help']]) {
      const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      // the reader is gone before the CLI writes a byte: its first write fails with EPIPE
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise((resolve) => child.on('close', (c) => resolve(c)));
      assert.deepEqual([code, stderr], [0, ''], args.join(' '));
    }
  });
});

describe('progress', () => {
  const step = (id: string, counts: { events: number; lost?: number }, durationMs?: number): ObservedStep => ({
    id, gadget: 'trace/open', fields: [], spoolPath: '/nonexistent', durationMs, progress: () => counts,
  });

  test('a terminal gets one line redrawn in place, in colour unless NO_COLOR', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let now = 0;
    const written: string[] = [];
    const counts = { events: 0, lost: 0 };
    const p = new Progress({ stream: { isTTY: true, write: (s: string) => written.push(s) }, colour: true, now: () => now });
    p.attached([step('opens', counts, 10_000)]);
    counts.events = 500;
    now = 1000;
    t.mock.timers.tick(TTY_EVERY_MS);
    assert.equal(written.length, 1);
    assert.ok(written[0].startsWith('\r\x1b[2K'), 'redrawn in place');
    assert.match(written[0], /1\.0s \/ 10\.0s {2}\x1b\[1mopens\x1b\[0m 500 events {2}500 events\/s/);
    counts.lost = 3;
    now = 2000;
    t.mock.timers.tick(TTY_EVERY_MS);
    assert.match(written[1], /500 events\x1b\[31m, 3 lost\x1b\[0m {2}0 events\/s/, 'lost in red');
    p.log('gadget-run: a log line');
    assert.deepEqual(written.slice(2), ['\r\x1b[2K', 'gadget-run: a log line\n', written[2 + 2]], 'a log line takes the progress line away and draws it again');
    p.captured();
    assert.equal(written.at(-1), '\r\x1b[2K', 'cleared at the end');
    assert.equal(useColour({ isTTY: true, write() {} }, { NO_COLOR: '1' }), false);
    assert.equal(useColour({ isTTY: true, write() {} }, { NO_COLOR: '' }), true, 'an empty NO_COLOR is unset');
    assert.equal(useColour({ isTTY: false, write() {} }, {}), false);
  });

  test('a log (not a terminal) gets a plain line every PLAIN_EVERY_MS at most, no escapes', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let now = 0;
    const written: string[] = [];
    const p = new Progress({ stream: { isTTY: false, write: (s: string) => written.push(s) }, now: () => now });
    p.attached([step('opens', { events: 42 }), step('execs', { events: 1, lost: 2 })]);
    now = PLAIN_EVERY_MS - 1;
    t.mock.timers.tick(PLAIN_EVERY_MS - 1);
    assert.deepEqual(written, [], 'nothing before the interval');
    now = PLAIN_EVERY_MS;
    t.mock.timers.tick(1);
    assert.deepEqual(written, ['gadget-run: 10.0s  opens 42 events  execs 1 events, 2 lost  4 events/s\n']);
    p.captured();
  });

  test('the CLI on a pseudo-terminal redraws one line; through a pipe it writes no escapes; NO_COLOR drops colour', { skip: notRoot || (!fs.existsSync('/usr/bin/script') && 'needs script(1) from util-linux') }, async () => {
    const dir = tempDir();
    const recipe = writeRecipe(dir, 'p.yaml', 'name: p\nrun: sleep 1.2\nsteps:\n  - id: opens\n    gadget: trace/open\n    filter: comm==nomatch_xyz\n');
    const cmd = `${process.execPath} ${BIN} run ${recipe} --out ${path.join(dir, 'out')}`;
    const tty = (env: Record<string, string | undefined>) => spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, ...env } });
    const coloured = tty({ NO_COLOR: undefined });
    assert.equal(coloured.status, 0, coloured.stdout + coloured.stderr);
    assert.match(coloured.stdout, /\r\x1b\[2K\x1b\[2mgadget-run:\x1b\[0m \d+ms {2}\x1b\[1mopens\x1b\[0m 0 events/);
    const plain = tty({ NO_COLOR: '1' });
    assert.match(plain.stdout, /\r\x1b\[2Kgadget-run: \d+ms {2}opens 0 events/);
    assert.doesNotMatch(plain.stdout, /\x1b\[[0-9;]*m/, 'NO_COLOR: no colour');
    const piped = await runCli(['run', recipe, '--out', path.join(dir, 'out2')]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /[\r\x1b]/, 'a log gets no escapes');
  });
});

describe('validation and apiVersion', () => {
  test('every error in one pass: schema errors and registry errors of the steps the schema accepted', () => {
    assert.deepEqual(problemsOf(`name: x
duration: 1m30s
sequentiall: true
steps:
  - id: a
    gadget: trace/exec
    buffer: 3
  - id: b
    gadget: trace/opn
  - id: c
    gadget: trace/open
    filter: pathh~x
assertions:
  - name: bad
    expr: '$count(('
`), [
      'r.yaml:3:1 sequentiall: unknown property "sequentiall" (known: ' + problemsOf('name: x\nzzzzzzzzzzz: 1\nsteps: [{id: a, gadget: trace/exec, duration: 1s}]\n')[0].split('(known: ')[1], // as long as sequentiall: the cut falls at the same place
      'r.yaml:7:13 steps[0].buffer: must be string — stream and packet gadgets: ring buffer size, a power of two (default 16MiB)',
      // a name as long as trace/opn: the message is cut at a fixed length, so a shorter one cuts the known list elsewhere
      'r.yaml:9:13 steps[1].gadget: unknown gadget "trace/opn" (known: ' + problemsOf('name: x\nsteps: [{id: a, gadget: trace/opx}]\n')[0].split('(known: ')[1],
      'r.yaml:12:13 steps[2].filter: unknown field "pathh" (did you mean path? known: ' + problemsOf('name: x\nsteps: [{id: a, gadget: trace/open, filter: qqqqqq==1, duration: 1s}]\n')[0].split('(known: ')[1],
      'r.yaml:15:11 assertions[0].expr: JSONata: Expected ")" before end of expression (at character 8)',
    ].map((l) => l));
  });

  test('a bad recipe-level default (max_bytes) is reported once, and the steps that inherit it are still checked', () => {
    const got = problemsOf('name: x\nmax_bytes: 0\nsteps:\n  - id: a\n    gadget: trace/opn\n');
    assert.equal(got.length, 2, got.join('\n'));
    assert.match(got[0], /^r\.yaml:2:12 max_bytes: must be string — a size: 256KiB, 16MiB, 1GiB$/);
    assert.match(got[1], /^r\.yaml:5:13 steps\[0\]\.gadget: unknown gadget "trace\/opn"/);
  });

  test('apiVersion: gadget-run/v1 and none are read; another says which versions this build reads', async () => {
    const body = 'name: v\nsteps:\n  - id: a\n    gadget: snapshot/process\n';
    assert.equal(load(`apiVersion: gadget-run/v1\n${body}`).recipe.apiVersion, 'gadget-run/v1');
    assert.equal(load(body).recipe.apiVersion, undefined);
    assert.deepEqual(problemsOf(`apiVersion: gadget-run/v2\n${body}  - newKey: 1\n`), [
      'r.yaml:1:13 apiVersion: apiVersion "gadget-run/v2" is not a version this gadget-run reads (it reads: gadget-run/v1); upgrade gadget-run or write apiVersion: gadget-run/v1',
    ]);
    const dir = tempDir();
    const v = await runCli(['validate', writeRecipe(dir, 'v.yaml', body)]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^recipe versions this gadget-run reads: gadget-run\/v1$/m);
  });
});

test("a node-wide trace/open does not show gadget-run's own opens, and does show another process's", { skip: notRoot }, async () => {
  const dir = tempDir();
  const tag = `self${process.pid}x${Date.now()}`;
  // --out's path carries the tag: gadget-run opens its spool there (-o json reads it) while tracing
  const out = path.join(dir, tag);
  const mine = path.join(dir, `${tag}.txt`);
  fs.writeFileSync(mine, '');
  const cli = startCli(['trace/open', '--filter', `path~${tag}`, '--duration', '2s', '-o', 'json', '--out', out]);
  await cli.stderrUntil(/attached/);
  for (let i = 0; i < 3; i++) fs.readFileSync(mine);
  const r = await cli.done;
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.ok(events.filter((e) => e.pid === process.pid && e.path === mine).length >= 3, 'the test process is seen');
  assert.deepEqual(events.filter((e) => e.pid === cli.child.pid), [], 'gadget-run itself is not');
  // it did open files under --out while tracing: the filter alone would have let them through
  assert.ok(fs.readdirSync(path.join(out, 'raw')).includes('open.ndjson'));
});

/** npm, without blocking the event loop (the test's own registry answers it). */
function npm(args: string[], opts: { cwd?: string; timeout: number }): Promise<{ status: number | null; stderr: string }> {
  const child = spawn('npm', args, { cwd: opts.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout);
  return new Promise((resolve) => child.on('close', (status) => (clearTimeout(timer), resolve({ status, stderr }))));
}

test('installed from `npm pack`: the package runs a recipe with its shipped CO-RE objects and bundle, no clang, bpftool optional', { skip: notRoot, timeout: 300_000 }, async (t) => {
  const dir = tempDir();
  const packed = spawnSync('npm', ['pack', '--pack-destination', dir, '--json'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(packed.status, 0, packed.stderr);
  const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  const shipped = files.map((f) => f.path);
  for (const f of ['bin/gadget-run', 'build/gadget-run.mjs', 'build/sandbox-worker.mjs', 'build/bpf/trace_open.bpf.o', 'schemas/recipe.schema.json']) assert.ok(shipped.includes(f), `${f} is in the package`);
  assert.ok(shipped.some((f) => /^build\/chunk-.*\.mjs$/.test(f)), "the bundle's chunks are in the package");
  assert.ok(!shipped.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), 'no tests, no node_modules');

  const prefix = path.join(dir, 'prefix');
  // its dependencies resolved as a user's install resolves them, from a registry on loopback that holds
  // this checkout's (package-lock.json's versions): nothing is fetched from the public registry
  const registry = await localRegistry(t, ROOT, path.join(dir, 'registry'));
  const install = await npm(['install', '-g', '--prefix', prefix, path.join(dir, filename), `--registry=${registry.url}`, `--cache=${path.join(dir, 'npm-cache')}`,
    '--fetch-retries=0', '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=error'], { timeout: 240_000 });
  assert.equal(install.status, 0, `${install.stderr}\nnot in the local registry: ${[...registry.missing].join(', ')}`);
  // clang at run time would be a packaging bug, and bpftool may only make the minimized-BTF
  // cache (src/ebpf/core-btf.ts), which the run must not need: these stand-ins record any call and fail
  const fakeBin = path.join(dir, 'fake-bin');
  const called = path.join(dir, 'called');
  fs.mkdirSync(fakeBin);
  for (const tool of ['clang', 'llc', 'bpftool']) fs.writeFileSync(path.join(fakeBin, tool), `#!/bin/sh\necho ${tool} "$@" >> ${called}\nexit 1\n`, { mode: 0o755 });
  const bin = path.join(prefix, 'bin/gadget-run');
  const btfCache = path.join(dir, 'btf-cache');
  const env = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, GADGET_RUN_OBJECTS: undefined, GADGET_RUN_BTF_CACHE: btfCache, GADGET_RUN_TIMING: '1' };
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8', env });
  assert.deepEqual([v.status, v.stdout], [0, `${VERSION}\n`], v.stderr);
  const recipe = path.join(prefix, 'lib/node_modules/gadget-run/recipes/quickstart.yaml');
  const runInstalled = (name: string, runEnv: NodeJS.ProcessEnv) => {
    const out = path.join(dir, name);
    const r = spawnSync(bin, ['run', recipe, '--out', out], { encoding: 'utf8', env: runEnv, cwd: dir, timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(readJson(path.join(out, 'summary.json')).status, 'passed');
    return r.stderr;
  };
  runInstalled('out', env);
  const calls = fs.existsSync(called) ? fs.readFileSync(called, 'utf8').split('\n').filter(Boolean) : [];
  assert.deepEqual(calls.filter((c) => !c.startsWith('bpftool gen min_core_btf ')), [], 'nothing but the optional minimized BTF');
  const cached = () => (fs.existsSync(btfCache) ? fs.readdirSync(btfCache, { recursive: true }).map(String).filter((f) => f.endsWith('.btf')) : []);
  assert.deepEqual(cached(), [], 'a failed bpftool leaves no cache file');

  const noBpftool = fs.existsSync('/usr/sbin/bpftool') ? false : 'needs /usr/sbin/bpftool (./scripts/setup installs it)';
  await t.test('with the real bpftool the first run makes the cache (outside the package) and the next loads against it', { skip: noBpftool }, () => {
    fs.rmSync(path.join(fakeBin, 'bpftool'));
    runInstalled('out-cache-1', env);
    assert.ok(cached().length > 0, 'the first run with bpftool made minimized BTFs');
    assert.match(runInstalled('out-cache-2', env), /timing [\d.]+ opened \S+\.bpf\.o \(minimized CO-RE BTF\)/);
    const installed = fs.readdirSync(path.join(prefix, 'lib/node_modules/gadget-run'), { recursive: true }).map(String);
    assert.deepEqual(installed.filter((f) => f.endsWith('.btf')), [], 'no cache file inside the package');
  });
});
