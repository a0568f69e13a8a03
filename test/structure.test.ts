/**
 * The shape of src/, checked from the code itself (STYLE.md: "arrows point down", "the CLI
 * is the top floor: it imports everything and nothing imports it").
 *
 * Every import of every src/**.ts file is read with TypeScript's own parser: static imports,
 * `export … from`, dynamic `import()` (the CLI loads its commands that way; a cycle through an
 * import() is still two modules that cannot be understood apart) and type-only imports.
 *
 * Type-only imports count. They are erased when compiled, so they cannot order module loading,
 * but a cycle of types is still two modules that must change together: steps/filter.ts and
 * steps/types.ts each describe the other's data, and issue 14 counts them as one of its three
 * cycles. Without type-only imports the check would pass that one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');
/** The one module allowed to import the CLI: the process entry (bin/gadget-run and the bundle start it). */
const CLI_ENTRY = 'src/cli/main.ts';

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
  line: number;
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The src-relative module a specifier names, or undefined for packages and node: built-ins. */
function resolve(fromFile: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.relative(ROOT, path.resolve(path.dirname(fromFile), specifier));
}

/** Every import edge out of one file. */
function importsOf(file: string, text = fs.readFileSync(file, 'utf8')): Edge[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const from = path.relative(ROOT, file);
  const edges: Edge[] = [];
  const add = (spec: ts.Node, typeOnly: boolean) => {
    if (!ts.isStringLiteral(spec)) return;
    const to = resolve(file, spec.text);
    if (to) edges.push({ from, to, typeOnly, line: source.getLineAndCharacterOfPosition(spec.getStart()).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      // `import { type A, type B } from` is erased just as `import type { A, B } from` is
      const allTypes = !!clause && !clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, !!clause?.isTypeOnly || allTypes);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments.length) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      // `typeof import('./x.ts')` in a type position
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/**
 * The cycles of a graph, one per strongly connected component of more than one module (or a
 * module importing itself), each written as a path that starts and ends at the same module.
 */
function cyclesOf(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  // Tarjan's strongly connected components
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (next.get(v) ?? []).includes(v)) components.push(component);
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) connect(v);
  // one concrete loop per component, from its first module by name, the shortest way back (BFS)
  const loops = components.map((component) => {
    const members = new Set(component);
    const start = [...component].sort()[0];
    const cameFrom = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of next.get(v) ?? []) {
        if (!members.has(w)) continue;
        if (w === start) {
          const loop = [start];
          for (let u: string | undefined = v; u !== start && u !== undefined; u = cameFrom.get(u)) loop.splice(1, 0, u);
          return [...loop, start];
        }
        if (!cameFrom.has(w)) {
          cameFrom.set(w, v);
          queue.push(w);
        }
      }
    }
    return [start, start];
  });
  return loops.sort((a, b) => a.join().localeCompare(b.join()));
}

const edges = tsFiles(SRC).flatMap((f) => importsOf(f));

test('the import reader sees static, re-exported, dynamic and type-only imports, and only relative ones', () => {
  const file = path.join(SRC, 'x/a.ts');
  const found = importsOf(
    file,
    `import fs from 'node:fs';
import { b } from './b.ts';
import type { C } from '../c.ts';
import { type D, type E } from './d.ts';
import { type F, g } from './f.ts';
export { h } from './h.ts';
export type { I } from './i.ts';
const j = await import('./j.ts');
let k: typeof import('./k.ts');
`,
  ).map((e) => `${e.to}${e.typeOnly ? ' (type)' : ''}`);
  assert.deepEqual(found, ['src/x/b.ts', 'src/c.ts (type)', 'src/x/d.ts (type)', 'src/x/f.ts', 'src/x/h.ts', 'src/x/i.ts (type)', 'src/x/j.ts', 'src/x/k.ts (type)']);
});

test('the cycle finder names each loop once, and passes a graph without one', () => {
  const e = (from: string, to: string): Edge => ({ from, to, typeOnly: false, line: 1 });
  assert.deepEqual(cyclesOf([e('a', 'b'), e('b', 'c'), e('c', 'a'), e('c', 'd'), e('d', 'e'), e('e', 'd'), e('f', 'f')]), [
    ['a', 'b', 'c', 'a'],
    ['d', 'e', 'd'],
    ['f', 'f'],
  ]);
  assert.deepEqual(cyclesOf([e('a', 'b'), e('b', 'c'), e('a', 'c')]), []);
});

test('every relative import in src/ names a file that exists', () => {
  const missing = edges.filter((e) => !fs.existsSync(path.join(ROOT, e.to))).map((e) => `${e.from}:${e.line} imports ${e.to}`);
  assert.deepEqual(missing, [], `imports of files that do not exist:\n${missing.join('\n')}`);
});

test('no import cycles in src/', () => {
  const cycles = cyclesOf(edges).map((c) => c.join(' → '));
  assert.deepEqual(cycles, [], `import cycles (break each by moving what both sides need one floor down):\n${cycles.map((c) => `  ${c}`).join('\n')}`);
});

test('nothing in src/ imports src/cli/ but the entry: the CLI is the top floor', () => {
  const inCli = (p: string) => p.startsWith('src/cli/');
  const upward = edges.filter((e) => inCli(e.to) && !inCli(e.from)).map((e) => `${e.from}:${e.line} imports ${e.to}${e.typeOnly ? ' (type only)' : ''}`);
  assert.deepEqual(upward, [], `src/cli/ is the top floor; move what these need out of it (one floor down) instead:\n${upward.join('\n')}`);
  assert.ok(edges.some((e) => e.from === CLI_ENTRY), `${CLI_ENTRY} is the entry and imports the command table`);
});
