/**
 * gadget-run's command line:
 *   gadget-run run recipe.yaml [--out DIR] [--max-duration D]
 *   gadget-run validate recipe.yaml
 *   gadget-run gadgets [--json]
 * Exit: 0 passed, 1 a step or an assertion failed, 2 bad command line or recipe, 130/143 interrupted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkSupport, gadgets } from '../steps/index.ts';
import type { GadgetDefinition } from '../steps/types.ts';
import { parseDuration } from './duration.ts';
import { loadRecipeFile, RecipeError } from './recipe.ts';
import { renderTerminal } from './report.ts';
import { runRecipe } from './run.ts';
import { exitCodeFor } from './summary.ts';

/** The gadget-run checkout or install: the folder of our package.json, from src/runner or from the bundle in build/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const ROOT = packageRoot();

const USAGE = `usage:
  gadget-run run <recipe.yaml> [--out DIR] [--max-duration 5s]   run a recipe; artifacts and DIR/summary.json
  gadget-run validate <recipe.yaml>...                           check recipes (no root needed)
  gadget-run gadgets [--json]                                    list the gadgets and whether this kernel can run them
options:
  --out DIR           where artifacts go (default: out/<recipe name>)
  --max-duration D    cap every step's duration (e.g. 2s), for trying a recipe out
  --objects DIR       compiled BPF objects (default: build/bpf in the gadget-run checkout)
`;

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o' },
        'max-duration': { type: 'string' },
        objects: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version + '\n');
    return 0;
  }
  const [command, ...files] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  try {
    switch (command) {
      case 'run':
        if (files.length !== 1) throw new UsageError('run takes one recipe file');
        return await run(files[0], values);
      case 'validate':
        if (!files.length) throw new UsageError('validate takes one or more recipe files');
        return validate(files);
      case 'gadgets':
        return listGadgets(values.json === true);
      default:
        throw new UsageError(`unknown command "${command}" (run, validate, gadgets)`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
    if (err instanceof RecipeError) {
      process.stderr.write(err.message + '\n');
      return 2;
    }
    throw err;
  }
}

function usage(message: string): number {
  process.stderr.write(`gadget-run: ${message}\n${USAGE}`);
  return 2;
}

async function run(file: string, values: { out?: string; 'max-duration'?: string; objects?: string }): Promise<number> {
  const loaded = loadRecipeFile(file);
  let maxDurationMs: number | undefined;
  if (values['max-duration'] !== undefined) {
    try {
      maxDurationMs = parseDuration(values['max-duration']);
    } catch (err) {
      throw new UsageError(`--max-duration: ${(err as Error).message}`);
    }
  }
  const outDir = values.out ?? path.join('out', loaded.recipe.name);
  const summary = await runRecipe(loaded, {
    outDir,
    objectDir: values.objects ?? process.env.GADGET_RUN_OBJECTS ?? path.join(ROOT, 'build/bpf'),
    maxDurationMs,
  });
  process.stdout.write(renderTerminal(summary, outDir));
  return exitCodeFor(summary);
}

function validate(files: string[]): number {
  let failed = false;
  for (const file of files) {
    try {
      const { recipe } = loadRecipeFile(file);
      process.stdout.write(`${file}: ok (${recipe.steps.length} step${recipe.steps.length === 1 ? '' : 's'}${recipe.assertions?.length ? `, ${recipe.assertions.length} assertion${recipe.assertions.length === 1 ? '' : 's'}` : ''})\n`);
    } catch (err) {
      if (!(err instanceof RecipeError)) throw err;
      process.stderr.write(err.message + '\n');
      failed = true;
    }
  }
  return failed ? 2 : 0;
}

function listGadgets(json: boolean): number {
  const rows = Object.values(gadgets as Record<string, GadgetDefinition>).map((def) => {
    const { why, missingOptional } = checkSupport(def);
    return {
      id: def.id,
      mode: def.mode,
      supported: !why,
      ...(why ? { reason: why } : {}),
      ...(missingOptional.length ? { missingOptional } : {}),
      description: def.description,
      fields: def.fields.map((f) => f.name),
      kernelFilters: Object.keys(def.kernelFilters),
      ...(def.params ? { params: def.params } : {}),
    };
  });
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const width = Math.max(...rows.map((r) => r.id.length));
  for (const r of rows) {
    process.stdout.write(`${r.id.padEnd(width)}  ${r.mode.padEnd(8)}  ${r.supported ? 'ok' : 'unsupported'}  ${r.description}\n`);
    if (r.reason) process.stdout.write(`${''.padEnd(width)}  ↳ ${r.reason}\n`);
    process.stdout.write(`${''.padEnd(width)}  fields: ${r.fields.join(', ')}\n`);
    if (r.kernelFilters.length) process.stdout.write(`${''.padEnd(width)}  filtered in the kernel (==): ${r.kernelFilters.join(', ')}\n`);
    const params = Object.entries((r.params?.properties ?? {}) as Record<string, { type?: string; description?: string }>);
    for (const [name, p] of params) process.stdout.write(`${''.padEnd(width)}  params.${name} (${p.type}): ${p.description ?? ''}\n`);
    if (r.missingOptional) process.stdout.write(`${''.padEnd(width)}  without: ${r.missingOptional.join(', ')} (not on this kernel)\n`);
  }
  return 0;
}
