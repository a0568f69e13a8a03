/**
 * Fuzzing recipes as a pull request could write them: mutated and random
 * recipes through validation and a run (with a fake session, so no kernel is
 * needed) end in a verdict or a recipe error with file:line:col, never an
 * exception of another kind, a stack trace, a hang, or a file outside --out.
 * Bounded in time so that it stays inside `npm test`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';
import { runRecipe } from '../../src/runner/run.ts';
import { exitCodeFor } from '../../src/runner/summary.ts';
import type { GadgetDefinition, StepContext, StepSession } from '../../src/steps/index.ts';
import { spoolOf } from '../../src/steps/modes/mode.ts';

const RECIPES = path.join(path.dirname(new URL(import.meta.url).pathname), '../../recipes');
const SEEDS = fs.readdirSync(RECIPES).filter((f) => f.endsWith('.yaml')).sort().map((f) => fs.readFileSync(path.join(RECIPES, f), 'utf8'));
const STACK = /\n\s+at .+:\d+:\d+/;

/** Values a hostile or careless author might put anywhere in a recipe. */
const hostile = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '..', '../x.csv', '/etc/passwd', 'y\n/../../../etc/EVIL.csv', './summary.json', 'summary.json', 'a\u0000.csv', 'x'.repeat(5000),
    '0s', '1e99', '-1', '24d', '25d', '1m30s', '10ms', 'pid==1', 'path~(a+)+$', 'comm==' + 'c'.repeat(40), '$count(steps.x) = 0',
    '($f := function($n){ $f($n) }; 1)', 'trace/exec', 'trace/open', 'snapshot/process', 'nope/nope', '64MiB', '1024MiB', '4KiB',
  ),
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -1, 1e99, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, null, true, false),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
);

/** A path into a parsed recipe, chosen by a list of random indices. */
function pick(root: unknown, choices: number[]): (string | number)[] {
  const out: (string | number)[] = [];
  let node = root;
  for (const c of choices) {
    if (Array.isArray(node) && node.length) {
      const i = c % node.length;
      out.push(i);
      node = node[i];
    } else if (node && typeof node === 'object' && Object.keys(node).length) {
      const keys = Object.keys(node);
      const k = keys[c % keys.length];
      out.push(k);
      node = (node as Record<string, unknown>)[k];
    } else {
      break;
    }
  }
  return out;
}

function setAt(root: Record<string, unknown>, at: (string | number)[], value: unknown, key?: string): void {
  if (!at.length) {
    root[key ?? 'extra'] = value;
    return;
  }
  let node: any = root;
  for (const p of at.slice(0, -1)) node = node[p];
  if (key !== undefined && node[at.at(-1)!] && typeof node[at.at(-1)!] === 'object' && !Array.isArray(node[at.at(-1)!])) node[at.at(-1)!][key] = value;
  else node[at.at(-1)!] = value;
}

/** A seed recipe with a few values replaced (or keys added) anywhere in its tree. */
const structured = fc
  .tuple(
    fc.nat({ max: SEEDS.length - 1 }),
    fc.array(fc.tuple(fc.array(fc.nat(), { maxLength: 5 }), hostile, fc.option(fc.constantFrom('filter', 'outputs', 'duration', 'buffer', 'max_bytes', 'params', 'transform', 'delay', 'gadget', 'id'), { nil: undefined })), { minLength: 0, maxLength: 3 }),
  )
  .map(([seed, edits]) => {
    const doc = parse(SEEDS[seed]) as Record<string, unknown>;
    for (const [choices, value, key] of edits) setAt(doc, pick(doc, choices), value, key);
    return stringify(doc);
  });

/** A seed recipe's text with bytes inserted, deleted or lines repeated. */
const textual = fc
  .tuple(fc.nat({ max: SEEDS.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.string({ maxLength: 12 })), { minLength: 1, maxLength: 6 }))
  .map(([seed, edits]) => {
    let text = SEEDS[seed];
    for (const [at, del, ins] of edits) {
      const i = at % (text.length + 1);
      text = text.slice(0, i) + ins + text.slice(i + del);
    }
    return text;
  });

const anyRecipe = fc.oneof(structured, textual, fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }));

function validates(text: string): ReturnType<typeof parseRecipe> | undefined {
  try {
    return parseRecipe(text, 'fuzz.yaml');
  } catch (err) {
    if (!(err instanceof RecipeError)) throw new Error(`not a recipe error: ${(err as Error)?.stack ?? err}`);
    assert.doesNotMatch(err.message, STACK);
    assert.ok(err.message.length < 20_000, `a report of ${err.message.length} characters`);
    for (const line of err.message.split('\n')) assert.match(line, /^(fuzz\.yaml(:\d+:\d+)? |… and \d+ more problems$)/, line);
    return undefined;
  }
}

test('fuzzed recipes: validation accepts or reports where, never throws anything else', () => {
  fc.assert(fc.property(anyRecipe, (text) => void validates(text)), { numRuns: 400, interruptAfterTimeLimit: 8000 });
});

/** A stream that writes a few events shaped like the gadget's fields when it stops. */
function fakeOpen(def: GadgetDefinition, ctx: StepContext): Promise<StepSession> {
  const event = Object.fromEntries(def.fields.map((f) => [f.name, f.type === 'number' ? 1 : f.type === 'boolean' ? true : f.type === 'string[]' ? ['a', 'b'] : 'x']));
  return Promise.resolve({
    finished: def.mode === 'snapshot' ? Promise.resolve() : new Promise(() => {}),
    attached: 1,
    start() {},
    async stop() {
      fs.writeFileSync(spoolOf(ctx), `${JSON.stringify(event)}\n`.repeat(3));
      return { events: 3, lost: 0, warnings: [] };
    },
  });
}

/** Every file under dir, relative to it. */
function tree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

const tally = { cases: 0, ran: 0 };
const RUNS = 8;

test('fuzzed recipes that validate run to a verdict, inside --out only', { timeout: 120_000 }, async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-fuzz-'));
  try {
    await fc.assert(
      fc.asyncProperty(structured, async (text) => {
        tally.cases++;
        // the workload is shell: never run fuzzed shell, keep whether there is one
        const doc = parse(text) as Record<string, unknown> | null;
        if (doc && typeof doc === 'object' && 'run' in doc) doc.run = 'true';
        const loaded = validates(stringify(doc));
        // only the recipes that validate count as runs: fast-check draws again for the others
        // (a fixed share would make the number that run a matter of the seed: once 3 of 25)
        fc.pre(loaded !== undefined);
        tally.ran++;
        const dir = fs.mkdtempSync(path.join(root, 'case-'));
        const out = path.join(dir, 'out');
        fs.mkdirSync(out);
        const summary = await runRecipe(loaded, { outDir: out, objectDir: '/nonexistent', openSession: fakeOpen, maxDurationMs: 20, log: () => {} });
        assert.ok([0, 1].includes(exitCodeFor(summary)), `exit ${exitCodeFor(summary)}: ${summary.status}`);
        assert.deepEqual(fs.readdirSync(dir), ['out'], 'nothing beside --out');
        assert.ok(tree(out).includes('summary.json'), 'the summary is written');
        fs.rmSync(dir, { recursive: true, force: true });
      }),
      // a run starts a sandbox worker (~0.3 s from TypeScript): few runs, and no time limit,
      // since fast-check's limit returns while a run is still going
      { numRuns: RUNS },
    );
    assert.ok(tally.ran >= RUNS, `only ${tally.ran} of ${tally.cases} fuzzed recipes were valid enough to run`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
