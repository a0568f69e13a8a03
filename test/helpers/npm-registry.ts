/**
 * An npm registry on loopback that serves this checkout's production
 * dependencies, as package-lock.json pins them and node_modules holds them:
 * a test installs the packed package with the dependency resolution a user
 * gets (`npm install -g gadget-run-x.tgz`) without reaching the public
 * registry, which CI jobs and this machine may not have.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
}

export interface LocalRegistry {
  url: string;
  /** packages asked for that it does not hold: optional peers and other platforms' builds, which npm looks up and does without */
  missing: Set<string>;
}

/** Tarballs (the installed copy, without its nested node_modules) and packuments for every non-dev package of the lock. */
function fillRegistry(root: string, dir: string): Map<string, { versions: Record<string, Record<string, unknown>> }> {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const packuments = new Map<string, { versions: Record<string, Record<string, unknown>> }>();
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (!key || entry.dev) continue;
    const installed = path.join(root, key);
    if (!fs.existsSync(path.join(installed, 'package.json'))) {
      // an optional build for another platform is not installed here; anything else missing is a broken node_modules
      if (entry.optional) continue;
      throw new Error(`${key} is in package-lock.json but not installed: run npm ci first`);
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as Record<string, unknown> & { name: string; version: string };
    const file = `${manifest.name.replace('/', '__')}-${manifest.version}.tgz`;
    execFileSync('tar', ['-czf', path.join(dir, file), '--exclude=./node_modules', '--transform=s,^\\.,package,', '-C', installed, '.']);
    const bytes = fs.readFileSync(path.join(dir, file));
    const dist = {
      tarball: file,
      integrity: `sha512-${crypto.createHash('sha512').update(bytes).digest('base64')}`,
      shasum: crypto.createHash('sha1').update(bytes).digest('hex'),
    };
    const p = packuments.get(manifest.name) ?? { versions: {} };
    p.versions[manifest.version] = { ...manifest, _id: `${manifest.name}@${manifest.version}`, dist };
    packuments.set(manifest.name, p);
  }
  return packuments;
}

/** Start it; it stops after the test. */
export async function localRegistry(t: TestContext, root: string, dir: string): Promise<LocalRegistry> {
  fs.mkdirSync(dir, { recursive: true });
  const packuments = fillRegistry(root, dir);
  const missing = new Set<string>();
  let url = '';
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1).split('?')[0]);
    if (name.startsWith('-/tarballs/')) {
      const file = path.join(dir, path.basename(name));
      if (fs.existsSync(file)) return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(fs.readFileSync(file));
    }
    const p = packuments.get(name);
    if (!p) {
      missing.add(name);
      return res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    }
    const versions = Object.fromEntries(Object.entries(p.versions).map(([v, m]) => [v, { ...m, dist: { ...(m.dist as object), tarball: `${url}-/tarballs/${(m.dist as { tarball: string }).tarball}` } }]));
    const latest = Object.keys(versions).sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).at(-1);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, 'dist-tags': { latest }, versions }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url, missing };
}
