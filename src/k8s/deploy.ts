/**
 * What `gadget-run deploy` and `undeploy` do (their options are read in src/cli/commands.ts):
 * deploy prints the manifests (so `gadget-run deploy | kubectl apply -f -` works), or
 *   applies them with the current kubeconfig (server-side apply, field manager gadget-run);
 * undeploy deletes everything deploy creates (the CRD's deletion takes every GadgetRun and,
 *   through owner references, their result ConfigMaps); with wait, until all is gone.
 */
import { dumpYaml, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { type Api, statusOf } from './client.ts';
import { DEFAULT_DEPLOY, manifests, type DeployOptions } from './manifests.ts';

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
const CAP = /^[A-Z_]+$/;

export class DeployUsageError extends Error {}

export function deployOptions(values: { image?: string; 'pull-policy'?: string; caps?: string; 'no-host-network'?: boolean; 'btf-dir'?: string; 'run-namespace'?: string[] }): DeployOptions {
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
  if (values['run-namespace']) {
    const names = values['run-namespace'].flatMap((n) => n.split(',')).map((n) => n.trim()).filter(Boolean);
    const bad = names.filter((n) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n));
    if (bad.length) throw new DeployUsageError(`--run-namespace: not namespace names: ${bad.join(', ')}`);
    opts.runNamespaces = [...new Set(names)];
  }
  if (values['btf-dir'] !== undefined) {
    if (!values['btf-dir'].startsWith('/')) throw new DeployUsageError(`--btf-dir: the nodes' folder of BTF files, an absolute path (e.g. --btf-dir /var/lib/gadget-run/btf)`);
    opts.btfDir = values['btf-dir'];
  }
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
