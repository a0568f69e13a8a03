/**
 * Libraries loaded at their first use, not at start-up: JSONata (transforms,
 * assertions, baseline keys) and RE2JS (`~` filters, a recipe's redact
 * patterns) are 750 KB that every run compiled before its workload started
 * (bench/startup.ts: about 11 ms of the run's start), and a recipe without
 * expressions or regexes needs neither. Both are CommonJS, so they are
 * required synchronously where they are needed. The call goes through a
 * name of our own rather than `require`, so the bundle leaves them in
 * node_modules (scripts/build-cli.mjs, the k8s image's files) instead of
 * compiling them into a chunk it loads at once (scripts/unbundled.mjs lists
 * what a copy of the CLI needs beside its bundle).
 */
import { createRequire } from 'node:module';
import type jsonataFn from 'jsonata';
import type { RE2JS } from 're2js';

const load = createRequire(import.meta.url);

let jsonataModule: typeof jsonataFn | undefined;
let re2Module: typeof RE2JS | undefined;

/** jsonata(expr), as the package's default export */
export function jsonata(expr: string): ReturnType<typeof jsonataFn> {
  jsonataModule ??= load('jsonata') as typeof jsonataFn;
  return jsonataModule(expr);
}

/** RE2JS.compile(pattern): RE2 syntax, linear-time matching */
export function compileRe2(pattern: string): RE2JS {
  re2Module ??= (load('re2js') as { RE2JS: typeof RE2JS }).RE2JS;
  return re2Module.compile(pattern);
}
