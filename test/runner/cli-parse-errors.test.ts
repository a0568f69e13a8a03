/**
 * Command-line mistakes are told in our words, from parseArgs's tokens: no
 * Node message rewritten by regex, each naming the option as it was typed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './cli-helpers.ts';

test('unknown options, missing values, values given to flags, and --param without =', async () => {
  const cases: [string[], RegExp][] = [
    [['run', 'r.yaml', '--bogus'], /^gadget-run: Unknown option '--bogus'\n/],
    [['run', 'r.yaml', '--out'], /^gadget-run: option --out needs a value\n/],
    [['run', 'r.yaml', '-O', '-x'], /^gadget-run: option -O needs a value \(for one that starts with "-", write -O=-x\)\n/],
    [['gadgets', '--json=yes'], /^gadget-run: option --json takes no value\n/],
    [['trace/exec', '--param', 'novalue'], /--param "novalue": write --param name=value/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.doesNotMatch(r.stderr, /To specify a positional|write --set/, args.join(' '));
  }
});
