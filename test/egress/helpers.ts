/**
 * The audit/egress tests' network: a namespace the test creates, its lo
 * holding addresses of 10.99.0.0/24 and fd00:99::/64, TCP and UDP servers
 * on port 8080 of them and a DNS server on 10.99.0.1 answering from a zone
 * (test/fixtures/egress_servers.ts). Nothing leaves the namespace.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { parseRecipe } from '../../src/runner/recipe.ts';
import { runRecipe, type RunObserver } from '../../src/runner/run.ts';
import type { Summary } from '../../src/runner/summary.ts';
import { OBJECT_DIR, REPO } from '../helpers/kernel.ts';
import { backgroundIn, freshNetns, type Netns } from '../helpers/netns.ts';
import { tempDir, type Event, readNdjson } from '../helpers/session.ts';

export const RESOLVER = '10.99.0.1';
export const ZONE: Record<string, string[]> = {
  'allowed.test': ['10.99.0.2'],
  'two.test': ['10.99.0.3', '10.99.0.5'],
  'a.wild.test': ['10.99.0.8'],
  'v6.test': ['fd00:99::2'],
  'denied.test': ['10.99.0.9'],
};
const SERVED = ['10.99.0.1', '10.99.0.2', '10.99.0.3', '10.99.0.5', '10.99.0.6', '10.99.0.7', '10.99.0.8', '10.99.0.9', 'fd00:99::1', 'fd00:99::2', 'fd00:99::3'];

export async function egressNetwork(t: TestContext, label: string): Promise<Netns> {
  const ns = freshNetns(t, `${label}-${process.pid}`);
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns.name, ...args], { stdio: 'pipe' });
  // on lo (no dummy driver here): local addresses all the same, outside 127.0.0.0/8 and ::1
  for (const a of SERVED) ip(...(a.includes(':') ? ['-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad'] : ['addr', 'add', `${a}/32`, 'dev', 'lo']));
  await backgroundIn(t, ns, process.execPath, ['--import', 'tsx', path.join(REPO, 'test/fixtures/egress_servers.ts'), JSON.stringify(ZONE), ...SERVED]);
  return ns;
}

export const CLIENT = path.join(REPO, 'test/fixtures/egress_client.mjs');

/** The client's actions as the workload, in the namespace; its lines go to DIR/client.ndjson. */
export function clientRun(ns: Netns, out: string, actions: string[]): string {
  return `ip netns exec ${ns.name} ${process.execPath} ${CLIENT} ${actions.map((a) => `'${a}'`).join(' ')} > ${path.join(out, 'client.ndjson')}`;
}

export interface EgressRun {
  out: string;
  summary: Summary;
  client: Event[];
  events: Event[];
}

/** Run a recipe (its text made by `recipe` from the output folder) and read what the client and the egress step saw. */
export async function runEgress(t: TestContext, recipe: (out: string) => string, file?: string, observer?: RunObserver): Promise<EgressRun> {
  const out = tempDir(t, 'egress-test-');
  const recipeFile = file ?? path.join(out, 'recipe.yaml');
  const text = recipe(out);
  fs.writeFileSync(recipeFile, text);
  const loaded = parseRecipe(text, recipeFile);
  const summary = await runRecipe(loaded, { outDir: path.join(out, 'run'), objectDir: OBJECT_DIR, log: () => {}, processSignals: false, ...(observer ? { observer } : {}) });
  const client = fs.existsSync(path.join(out, 'client.ndjson')) ? readNdjson(path.join(out, 'client.ndjson')) : [];
  const raw = path.join(out, 'run', 'raw', 'egress.ndjson');
  return { out, summary, client, events: fs.existsSync(raw) ? readNdjson(raw) : [] };
}

/** What each client action got: target → ok or the error code. */
export function outcomes(client: Event[]): Record<string, string> {
  return Object.fromEntries(client.filter((c) => c.action !== 'resolve').map((c) => [`${c.action} ${c.target}`, c.ok ? 'ok' : (c.code as string)]));
}
