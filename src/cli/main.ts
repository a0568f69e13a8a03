import { mark } from '../timing.ts';
import { main } from './commands.ts';

mark('entry');

process.exitCode = await main(process.argv.slice(2));
