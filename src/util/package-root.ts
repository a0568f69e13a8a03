/** Where gadget-run itself is: its checkout or install, and the BPF objects built there. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The gadget-run checkout or install: the folder of our package.json, found
 * upward from this module, whether it runs from src/ or from the bundle's
 * chunks in build/.
 */
export function packageRoot(): string {
  if (root === undefined) {
    let dir = path.dirname(fileURLToPath(import.meta.url));
    while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    root = dir;
  }
  return root;
}

/** The compiled .bpf.o files: $GADGET_RUN_OBJECTS, else build/bpf of this gadget-run. */
export function defaultObjectDir(): string {
  return process.env.GADGET_RUN_OBJECTS ?? path.join(packageRoot(), 'build/bpf');
}
