/**
 * The output formats a step can write, apart from the writers (./artifacts.ts),
 * so that loading a recipe checks its outputs without loading them.
 */
import path from 'node:path';

/** The formats every step can write; a gadget may add its own (its definition's `outputs`). */
export const FORMATS = ['ndjson', 'json', 'csv', 'yaml', 'folded', 'svg', 'pb.gz'] as const;

/** A file's format: its extension, without the dot (`pb.gz`, pprof's, is one). */
export function formatOf(file: string): string {
  return file.endsWith('.pb.gz') ? 'pb.gz' : path.extname(file).slice(1);
}

/** What a step's outputs may end in: the common formats, then its gadget's own. */
export function formatsFor(own: Readonly<Record<string, unknown>> | undefined): string[] {
  return [...FORMATS, ...Object.keys(own ?? {})];
}
