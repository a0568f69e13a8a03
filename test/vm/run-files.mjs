// Runs several test files in this one process (node 20 has no --test-isolation=none):
// under TCG every node start and every cold tsx compile of src/ costs seconds.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

for (const file of process.argv.slice(2)) await import(pathToFileURL(path.resolve(file)).href);
