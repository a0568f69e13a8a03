/**
 * The pods of the agent's node, as the API server sees them: one list and
 * one watch of pods with fieldSelector spec.nodeName=<node> for the agent's
 * lifetime (not per run), so a run starts with its node's pods known and a
 * pod scheduled during the run is known before the kubelet creates its
 * containers' cgroups. Feeds the Kubernetes container source
 * (src/containers/k8s-source.ts) and the pods a selection names.
 */
import { ListWatch, Watch, type KubernetesListObject, type V1Pod } from '@kubernetes/client-node';
import { PodIndex, topOwner, type OwnerGetter, type OwnerRef } from '../containers/k8s-source.ts';
import type { ContainerSource } from '../containers/enrichment.ts';
import { matchesSelection } from '../containers/selection.ts';
import { apiMessage, type Api } from './client.ts';
import type { Selection } from './crd.ts';

export class NodePods {
  readonly index: PodIndex;
  private watch?: ListWatch<V1Pod>;
  /** owner lookups in flight or done, by pod uid: each pod's top owner is walked once */
  private readonly walked = new Set<string>();

  constructor(private readonly api: Api, private readonly node: string, private readonly log: (line: string) => void) {
    this.index = new PodIndex(node);
  }

  /** Lists the node's pods and watches them; resolves once the list is in. */
  async start(): Promise<void> {
    const { api, node } = this;
    const fieldSelector = `spec.nodeName=${node}`;
    const list = () =>
      api.count('list pods', () => api.core.listPodForAllNamespaces({ fieldSelector })) as Promise<KubernetesListObject<V1Pod>>;
    const watch = new ListWatch<V1Pod>('/api/v1/pods', new Watch(api.kc), list, false, undefined, fieldSelector);
    this.watch = watch;
    const put = (pod: V1Pod) => {
      this.index.set(pod);
      this.walkOwner(pod);
    };
    watch.on('add', put);
    watch.on('update', put);
    watch.on('delete', (pod) => this.index.delete(pod));
    watch.on('connect', () => api.count('watch pods', async () => undefined));
    watch.on('error', (err) => {
      this.log(`pod watch failed (${apiMessage(err)}); retrying in 2 s`);
      setTimeout(() => void watch.start().catch((e) => this.log(`pod watch restart failed: ${apiMessage(e)}`)), 2000);
    });
    try {
      await watch.start();
    } catch (err) {
      throw new Error(`cannot list the pods of node ${node}: ${apiMessage(err)} (the agent's ClusterRole needs list and watch on pods: gadget-run deploy | kubectl apply -f -)`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    await this.watch?.stop();
  }

  /** The container source runs on this node use (beside the runtimes' own). */
  source(): ContainerSource {
    return this.index.source();
  }

  /** "namespace/pod" of the node's pods a selection names (the pods of its report, result.json). */
  matching(sel: Selection): string[] {
    return this.index
      .pods()
      .filter((p) => {
        const names = [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].map((c) => c.name);
        const k8s = { namespace: p.metadata?.namespace, pod: p.metadata?.name, labels: p.metadata?.labels ?? {} };
        // a pod matches when one of its containers would
        return (sel.container === undefined ? [undefined] : names).some((container) =>
          matchesSelection({ id: '', runtime: 'unknown', cgroupId: '', cgroupPath: '', k8s: { ...k8s, container } }, sel),
        );
      })
      .map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)
      .sort();
  }

  /** A pod's top owner, once (ReplicaSet → Deployment, Job → CronJob) as far as RBAC lets the agent read. */
  private walkOwner(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid || this.walked.has(uid) || !pod.metadata?.ownerReferences?.length) return;
    this.walked.add(uid);
    void topOwner(pod, this.getOwner).then(
      (owner) => owner && this.index.setOwner(uid, owner),
      () => {},
    );
  }

  private readonly getOwner: OwnerGetter = async (ref: OwnerRef, namespace: string) => {
    const { api } = this;
    if (ref.kind === 'ReplicaSet') {
      const rs = await api.count('get replicasets', () => api.apps.readNamespacedReplicaSet({ name: ref.name, namespace }));
      return rs.metadata?.ownerReferences;
    }
    if (ref.kind === 'Job') {
      const job = await api.count('get jobs', () => api.batch.readNamespacedJob({ name: ref.name, namespace }));
      return job.metadata?.ownerReferences;
    }
    return undefined;
  };
}
