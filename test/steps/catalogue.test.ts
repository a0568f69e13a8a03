/**
 * Engine and catalogue apart (STYLE.md): a gadget is data in src/gadgets that
 * contributes its fields, formats and evaluation through its definition; the
 * engine (src/steps) and everything above it reach gadgets only through the
 * registry. Read from the sources' import statements, no root needed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gadgets } from '../../src/steps/index.ts';
import { REPO } from '../helpers/kernel.ts';

const SRC = path.join(REPO, 'src');
const CATALOGUE = path.join(SRC, 'gadgets');
const REGISTRY = path.join(SRC, 'steps', 'index.ts');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** The files a source imports (static, dynamic, type-only and re-exports alike), as absolute paths. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => path.resolve(path.dirname(file), m[1]));
}

const inCatalogue = (file: string) => file.startsWith(CATALOGUE + path.sep);
const rel = (file: string) => path.relative(REPO, file);

test('only the registry imports a gadget: no engine, runner, k8s or container file does', () => {
  const offenders = sources(SRC)
    .filter((f) => !inCatalogue(f) && f !== REGISTRY)
    .flatMap((f) => importsOf(f).filter(inCatalogue).map((to) => `${rel(f)} imports ${rel(to)}`));
  assert.deepEqual(offenders, [], 'a gadget contributes through its definition (outputs, advise, report), not through an import');
});

test('each gadget is defined at src/gadgets/<id>.ts, one name per gadget', async () => {
  for (const [id, def] of Object.entries(gadgets)) {
    assert.equal(def.id, id);
    const file = path.join(CATALOGUE, `${id}.ts`);
    assert.ok(fs.existsSync(file), `${id}: expected its definition in ${rel(file)}`);
    const exported = Object.values(await import(file));
    assert.ok(exported.includes(def), `${rel(file)} does not export the registry's ${id}`);
  }
});

test('no import cycles among the engine and the catalogue', () => {
  const files = [...sources(path.join(SRC, 'steps')), ...sources(CATALOGUE)];
  const edges = new Map(files.map((f) => [f, importsOf(f).filter((to) => files.includes(to))]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, trail: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].map(rel).join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const to of edges.get(f)!) visit(to, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(cycles, []);
});
