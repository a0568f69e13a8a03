/**
 * `gadget-run deploy [--apply] [--image I] [--pull-policy P] [--caps A,B,...] [--no-host-network]`
 *   prints the manifests (so `gadget-run deploy | kubectl apply -f -` works), or
 *   applies them with the current kubeconfig (server-side apply, field manager gadget-run).
 * `gadget-run undeploy [--wait] [--timeout 2m]`
 *   deletes everything deploy creates (the CRD's deletion takes every GadgetRun and,
 *   through owner references, their result ConfigMaps); --wait returns when all is gone.
 */
import { parseArgs } from 'node:util';
import { dumpYaml, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseDuration } from '../steps/duration.ts';
import { Api, apiMessage, loadKubeConfig, statusOf } from './client.ts';
import { DEFAULT_DEPLOY, manifests, type DeployOptions } from './manifests.ts';

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
const CAP = /^[A-Z_]+$/;

export class DeployUsageError extends Error {}

export function deployOptions(values: { image?: string; 'pull-policy'?: string; caps?: string; 'no-host-network'?: boolean }): DeployOptions {
  const opts: DeployOptions = { ...DEFAULT_DEPLOY };
  if (values.image !== undefined) opts.image = values.image;
  if (values['pull-policy'] !== undefined) {
    if (!(PULL_POLICIES as readonly string[]).includes(values['pull-policy'])) throw new DeployUsageError(`--pull-policy: one of ${PULL_POLICIES.join(', ')}`);
    opts.pullPolicy = values['pull-policy'] as DeployOptions['pullPolicy'];
  }
  if (values.caps !== undefined) {
    const caps = values.caps.split(',').map((c) => c.trim().toUpperCase().replace(/^CAP_/, '')).filter(Boolean);
    const bad = caps.filter((c) => !CAP.test(c));
    if (bad.length) throw new DeployUsageError(`--caps: not capability names: ${bad.join(', ')} (e.g. --caps BPF,PERFMON,SYS_ADMIN)`);
    opts.caps = caps;
  }
  if (values['no-host-network']) opts.hostNetwork = false;
  return opts;
}

export function renderManifests(opts: DeployOptions): string {
  return manifests(opts).map((o) => dumpYaml(o)).join('---\n');
}

export async function applyManifests(api: Api, objects: KubernetesObject[], log: (l: string) => void): Promise<void> {
  for (const o of objects) {
    await api.count(`apply ${o.kind}`, () => api.objects.patch(o, undefined, undefined, 'gadget-run', true, PatchStrategy.ServerSideApply));
    log(`applied ${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`);
  }
}

/** Deletes in reverse order; with wait, until every object reads as not found. */
export async function removeManifests(api: Api, objects: KubernetesObject[], opts: { wait: boolean; timeoutMs: number; log: (l: string) => void }): Promise<void> {
  const reversed = [...objects].reverse();
  for (const o of reversed) {
    try {
      await api.count(`delete ${o.kind}`, () => api.objects.delete(o, undefined, undefined, undefined, undefined, 'Foreground'));
      opts.log(`deleted ${o.kind} ${o.metadata?.name}`);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }
  if (!opts.wait) return;
  const deadline = Date.now() + opts.timeoutMs;
  for (const o of reversed) {
    for (;;) {
      try {
        await api.count(`get ${o.kind}`, () => api.objects.read({ apiVersion: o.apiVersion!, kind: o.kind!, metadata: { name: o.metadata!.name!, namespace: o.metadata?.namespace } }));
      } catch (err) {
        if (statusOf(err) === 404) break;
        throw err;
      }
      if (Date.now() > deadline) throw new Error(`undeploy: ${o.kind} ${o.metadata?.name} still there after ${opts.timeoutMs / 1000} s (see kubectl describe)`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  opts.log('undeployed: nothing left');
}

const deployFlags = {
  apply: { type: 'boolean' },
  image: { type: 'string' },
  'pull-policy': { type: 'string' },
  caps: { type: 'string' },
  'no-host-network': { type: 'boolean' },
} as const;

export async function deployCommand(argv: string[]): Promise<number> {
  let opts: DeployOptions;
  let apply = false;
  try {
    const { values } = parseArgs({ args: argv, options: deployFlags });
    opts = deployOptions(values);
    apply = values.apply === true;
  } catch (err) {
    process.stderr.write(`gadget-run deploy: ${(err as Error).message}\n`);
    return 2;
  }
  if (!apply) {
    process.stdout.write(renderManifests(opts));
    return 0;
  }
  try {
    await applyManifests(new Api(loadKubeConfig()), manifests(opts), (l) => process.stderr.write(`gadget-run deploy: ${l}\n`));
    return 0;
  } catch (err) {
    process.stderr.write(`gadget-run deploy: ${apiMessage(err)}\n`);
    return 1;
  }
}

export async function undeployCommand(argv: string[]): Promise<number> {
  let wait = false;
  let timeoutMs = 120_000;
  try {
    const { values } = parseArgs({ args: argv, options: { wait: { type: 'boolean' }, timeout: { type: 'string' } } });
    wait = values.wait === true;
    if (values.timeout !== undefined) timeoutMs = parseDuration(values.timeout);
  } catch (err) {
    process.stderr.write(`gadget-run undeploy: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    await removeManifests(new Api(loadKubeConfig()), manifests(), { wait, timeoutMs, log: (l) => process.stderr.write(`gadget-run undeploy: ${l}\n`) });
    return 0;
  } catch (err) {
    process.stderr.write(`gadget-run undeploy: ${apiMessage(err)}\n`);
    return 1;
  }
}
