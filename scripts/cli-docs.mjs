// Writes docs/cli.md from the CLI's command and option tables (src/cli/commands.ts), so the
// reference cannot drift from `gadget-run help`: test/cli/commands.test.ts fails until this
// has been run after a table changed.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const { cliReference } = await tsImport('../src/cli/commands.ts', import.meta.url);
fs.writeFileSync(fileURLToPath(new URL('../docs/cli.md', import.meta.url)), cliReference());
