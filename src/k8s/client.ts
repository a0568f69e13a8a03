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

/** The reason field of an API error's Status body (Conflict, AlreadyExists, …). */
export function reasonOf(err: unknown): string | undefined {
  const body = (err as { body?: unknown })?.body;
  if (typeof body !== 'string') return undefined;
  try {
    return (JSON.parse(body) as { reason?: string }).reason;
  } catch {
    return undefined;
  }
}

/**
 * Worth another try: no answer (dropped connection), 429, any 5xx (a busy API
 * server's 504 "request did not complete within 34s" may still have been
 * applied: only idempotent requests go through withRetry), and an
 * optimistic-concurrency Conflict. AlreadyExists is an answer, not a hiccup.
 */
export function retryable(err: unknown): boolean {
  const code = statusOf(err);
  return code === undefined || code === 429 || code >= 500 || (code === 409 && reasonOf(err) === 'Conflict');
}

export interface RetryOptions {
  attempts: number;
  /** the first backoff's ceiling; doubles each time up to maxMs */
  baseMs: number;
  maxMs: number;
  log?: (line: string) => void;
  /** stop retrying once this says so (the value being sent is out of date) */
  until?: () => boolean;
  /** for tests: the wait between attempts */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Up to ~1 min of backoff beside the attempts themselves (a 504 alone takes the API server's
 * 34 s): a node that finished is not lost to a control plane busy for a while.
 */
export const RETRY: RetryOptions = { attempts: 8, baseMs: 500, maxMs: 15_000 };

/**
 * An idempotent request, counted once per attempt (the "API calls" figures are
 * requests sent, retries included), retried with full-jitter exponential backoff:
 * many agents that failed together must not come back together.
 */
export async function withRetry<T>(api: Api, what: string, request: () => Promise<T>, opts: RetryOptions = RETRY): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.count(what, request);
    } catch (err) {
      if (attempt >= opts.attempts || !retryable(err) || opts.until?.()) throw err;
      const delay = Math.round(Math.random() * Math.min(opts.maxMs, opts.baseMs * 2 ** (attempt - 1)));
      opts.log?.(`${what} failed (${apiMessage(err)}); retry ${attempt} in ${delay} ms`);
      await sleep(delay);
      if (opts.until?.()) throw err;
    }
  }
}

/**
 * Sends only the latest of a stream of values, one at a time: a value set while
 * another is being sent replaces any still waiting (a node's "Running" that a
 * busy API server has not taken yet is dropped once its final phase is known).
 * set() resolves when its value, or a newer one, has been sent.
 */
export class Latest<T> {
  private pending?: { value: T };
  private draining?: Promise<void>;

  /** send's second argument says whether a newer value is waiting (a retrying send may give up) */
  constructor(private readonly send: (value: T, superseded: () => boolean) => Promise<void>) {}

  set(value: T): Promise<void> {
    this.pending = { value };
    // drain() always awaits a send before it can end, so the assignment comes before its finally
    this.draining ??= this.drain();
    return this.draining;
  }

  /** resolves when nothing is being sent */
  async idle(): Promise<void> {
    await this.draining?.catch(() => {});
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const { value } = this.pending;
        this.pending = undefined;
        try {
          await this.send(value, () => this.pending !== undefined);
        } catch (err) {
          // a newer value supersedes this one: its failure does not matter any more
          if (!this.pending) throw err;
        }
      }
    } finally {
      // in the same turn as the last check of pending: a set() after this starts a new drain
      this.draining = undefined;
    }
  }
}
