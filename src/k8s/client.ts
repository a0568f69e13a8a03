/**
 * The API server, as gadget-run uses it: one KubeConfig, the typed API
 * classes, and a count of every request made (the scale figure "API calls per
 * node" and the RBAC derivation both read from here: each call site says its verb).
 */
import fs from 'node:fs';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  setHeaderOptions,
} from '@kubernetes/client-node';

/** KUBECONFIG / ~/.kube/config when there is one, else the pod's in-cluster config (ServiceAccount token). */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  // in a pod: the ServiceAccount's token and CA, and the kubernetes Service's address
  if (!process.env.KUBECONFIG && process.env.KUBERNETES_SERVICE_HOST && fs.existsSync(SA_TOKEN)) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) {
    throw new Error('no Kubernetes cluster configured: set KUBECONFIG (or ~/.kube/config), or run inside a pod with a ServiceAccount');
  }
  return kc;
}

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export const MERGE_PATCH = setHeaderOptions('Content-Type', 'application/merge-patch+json');

export class Api {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly ext: ApiextensionsV1Api;
  readonly objects: KubernetesObjectApi;
  /** requests made, by "verb resource" */
  readonly calls = new Map<string, number>();

  constructor(readonly kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.batch = kc.makeApiClient(BatchV1Api);
    this.ext = kc.makeApiClient(ApiextensionsV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
  }

  /** Counts one request (what: "list gadgetruns") and returns its result. */
  count<T>(what: string, request: () => Promise<T>): Promise<T> {
    this.calls.set(what, (this.calls.get(what) ?? 0) + 1);
    return request();
  }

  get total(): number {
    let n = 0;
    for (const v of this.calls.values()) n += v;
    return n;
  }
}

/** The HTTP status of a failed request, or undefined when it did not reach the server. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** One line for a failed request: the API server's message when it sent one. */
export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return `${statusOf(err) ?? ''} ${parsed.message}`.trim();
    } catch {
      // not JSON: fall through
    }
  }
  return (err as Error)?.message ?? String(err);
}
