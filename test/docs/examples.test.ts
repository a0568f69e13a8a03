/** The recipes the docs show are recipes: each one validates as written, assertions included. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { parseRecipe, RecipeError } from '../../src/runner/recipe.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

for (const doc of ['README.md', 'docs/recipes.md']) {
  test(`every whole recipe in ${doc} validates`, () => {
    const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
    // fragments (a containers: block) are not whole recipes: only blocks with steps are checked
    const recipes = [...text.matchAll(/```yaml\n([^]*?)\n```/g)].map((m) => m[1]).filter((y) => /^steps:/m.test(y));
    assert.ok(recipes.length > 0, `${doc} shows a recipe`);
    for (const [i, yaml] of recipes.entries()) {
      try {
        parseRecipe(yaml, `${doc}#${i + 1}`);
      } catch (err) {
        if (!(err instanceof RecipeError)) throw err;
        assert.fail(`${doc}, recipe ${i + 1}:\n${err.problems.map((p) => `${p.where} ${p.path}: ${p.message}`).join('\n')}`);
      }
    }
  });
}
