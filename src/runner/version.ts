/** gadget-run's own version, from package.json (bundled into the CLI at build time). */
import pkg from '../../package.json' with { type: 'json' };

export const TOOL_VERSION: string = pkg.version;
