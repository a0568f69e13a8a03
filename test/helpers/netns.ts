/** Network namespaces the packet gadget tests create (iproute2), with loopback up, removed after the test. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { stopChild } from './proc.ts';

export interface Netns {
  name: string;
  /** what a step's params.netns names: /var/run/netns/NAME */
  path: string;
}

export function freshNetns(t: TestContext, name: string): Netns {
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
  t.after(() => execFileSync('ip', ['netns', 'delete', name], { stdio: 'pipe' }));
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
  return { name, path: `/var/run/netns/${name}` };
}

/** A long-running command inside the namespace, killed after the test; resolves once it printed `ready`. */
export function backgroundIn(t: TestContext, ns: Netns, file: string, args: string[], ready = 'ready'): Promise<ChildProcess> {
  return backgroundReady(t, 'ip', ['netns', 'exec', ns.name, file, ...args], ready);
}

/** A long-running command, killed after the test; resolves once it printed `ready` on a line of its stdout. */
export async function backgroundReady(t: TestContext, file: string, args: string[], ready = 'ready'): Promise<ChildProcess> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => stopChild(child));
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      if (out.split('\n').includes(ready)) resolve();
    });
    once(child, 'exit').then(([code]) => reject(new Error(`${[file, ...args].join(' ')} exited (${code}) before "${ready}": ${err.trim()}`)));
  });
  return child;
}
