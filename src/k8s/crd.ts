/**
 * The GadgetRun custom resource: one run of a recipe on a set of nodes.
 * The CLI (or a runbook's `kubectl apply -f`) creates it in the `gadget`
 * namespace; each node's agent watches GadgetRuns, runs its share and answers
 * in a GadgetRunNode of its own (`<run>-<node>`: phase, status, message; created
 * when its steps are attached, patched once with its final phase), with its full
 * answer and captured results in ConfigMaps. Both are owned by the run, so
 * deleting the run collects them. Nothing a node writes is shared with another
 * node: a run's one object is written only by its CLI (cancel, expiry), which
 * keeps the API server's work per node constant however many nodes a run has
 * (docs/kubernetes.md, "Scale: 500 nodes"). Agents of the release before wrote
 * status.nodes.<node> of the run; the CLI still reads it during a rollout.
 */
import type { ServedResult } from './serve.ts';
import type { V1CustomResourceDefinition, V1CustomResourceDefinitionVersion, V1JSONSchemaProps, V1ObjectMeta } from '@kubernetes/client-node';

export const GROUP = 'gadget-run.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'gadgetruns';
export const KIND = 'GadgetRun';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const NAMESPACE = 'gadget';
export const NODE_PLURAL = 'gadgetrunnodes';
export const NODE_KIND = 'GadgetRunNode';

/** Which pods a run watches; resolved by each agent against its own node's pods. */
export interface Selection {
  namespace?: string;
  pod?: string;
  container?: string;
  labels?: Record<string, string>;
}

export interface GadgetRunSpec {
  /** the recipe's YAML text, validated again by each agent */
  recipe: string;
  /** nodes that should run it; empty or absent: every node with an agent */
  nodes?: string[];
  selector?: Selection;
  /** caps every step's duration, like --max-duration */
  maxDuration?: string;
  /** set (by Ctrl-C in the CLI, or by hand) to stop the run on every node; what was captured is kept */
  cancel?: boolean;
  /** a node's packed result above this size is served by its agent, not stored (--inline-limit; else the recipe's cluster.inline_limit, 1MiB) */
  inlineLimit?: string;
  /** sha256 (hex) of the token the CLI fetches served results with (serve.ts); absent: every result goes inline */
  fetchTokenHash?: string;
}

export type NodePhase = 'Running' | 'Succeeded' | 'Failed' | 'Cancelled';

export interface NodeStepResult {
  id: string;
  status: string;
  events: number;
  lost: number;
  reason?: string;
}

/**
 * One node's answer as the CLI watches it: the status of its GadgetRunNode (and, from
 * agents of the release before, its entry status.nodes.<node> of the run). Kept small:
 * every write is sent to every watcher of the run's nodes (the CLI, a runbook's kubectl).
 * The rest of the node's answer is its result object (NodeReport, results.ts).
 */
export interface NodeResult {
  phase: NodePhase;
  /** the node's own run summary status (passed, failed, error, interrupted) */
  status?: string;
  /** why the node failed (at most MESSAGE_MAX characters here; whole in its NodeReport) */
  message?: string;
}

/** a node's answer's message is cut to this; its report (result object) has it whole */
export const MESSAGE_MAX = 512;

/** A node's full answer: data result.json of its result object, the ConfigMap <run>-<node>-0 (results.ts). */
export interface NodeReport extends NodeResult {
  node: string;
  startedAt: string;
  finishedAt?: string;
  steps?: NodeStepResult[];
  /** pods of the selection found on this node */
  pods?: string[];
  /** result ConfigMaps written (results.ts) and the compressed bytes in them */
  chunks?: number;
  bytes?: number;
  /** the node's own files left out of its result: they did not fit under cluster.max_result_bytes */
  skipped?: string[];
  /** sha256 (hex) of the packed result: the joined chunks, or the served file */
  sha256?: string;
  /** above the inline limit: where its agent serves the result (serve.ts), nothing in ConfigMaps */
  served?: ServedResult;
  /** requests this agent sent for this run by "verb resource", retries included, up to its final status patch (scale figure) */
  apiCalls?: Record<string, number>;
}

/** The status entry of a report: its phase, status and a message short enough for the shared object. */
export function nodeStatus(r: NodeResult): NodeResult {
  const message = r.message === undefined ? undefined : r.message.length > MESSAGE_MAX ? `${r.message.slice(0, MESSAGE_MAX - 1)}…` : r.message;
  return { phase: r.phase, ...(r.status ? { status: r.status } : {}), ...(message !== undefined ? { message } : {}) };
}

export interface GadgetRunStatus {
  /** written by agents of the release before only (one shared key: it did not scale past ~50 nodes) */
  nodes?: Record<string, NodeResult>;
}

/**
 * A node's answer to a run, an object of its own: `<run>-<node>` in the run's namespace,
 * labelled with the run and the node, owned by the run. The node's agent creates it
 * (status Running) once its steps are attached and patches it once with the final phase;
 * nobody else writes it. `kubectl get gadgetrunnodes -l gadget-run.dev/run=NAME` lists a run's nodes.
 */
export interface GadgetRunNode {
  apiVersion: typeof API_VERSION;
  kind: typeof NODE_KIND;
  metadata: V1ObjectMeta & { name: string };
  spec: { run: string; node: string };
  status: NodeResult;
}

export interface GadgetRun {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta & { name: string };
  spec: GadgetRunSpec;
  status?: GadgetRunStatus;
}

const str: V1JSONSchemaProps = { type: 'string' };

/** The schema of a node's answer (NodeResult): nothing else, the API server prunes the rest. */
function nodeResultSchema(): V1JSONSchemaProps {
  return {
    type: 'object',
    properties: {
      phase: { type: 'string', _enum: ['Running', 'Succeeded', 'Failed', 'Cancelled'] },
      status: str,
      message: { type: 'string', maxLength: MESSAGE_MAX },
    },
  };
}

/** A namespaced CRD of this group, one version served and stored: the envelope both of ours share. */
function crdOf(plural: string, singular: string, kind: string, shortName: string, version: Omit<V1CustomResourceDefinitionVersion, 'name' | 'served' | 'storage'>): V1CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'gadget-run' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural, singular, kind, listKind: `${kind}List`, shortNames: [shortName] },
      versions: [{ name: VERSION, served: true, storage: true, ...version }],
    },
  };
}

/** GadgetRunNode: one node's answer to one run (no status subresource: the agent creates it with its status). */
export function gadgetRunNodeCrd(): V1CustomResourceDefinition {
  return crdOf(NODE_PLURAL, 'gadgetrunnode', NODE_KIND, 'grunnode', {
    additionalPrinterColumns: [
      { name: 'Run', type: 'string', jsonPath: '.spec.run' },
      { name: 'Node', type: 'string', jsonPath: '.spec.node' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Status', type: 'string', jsonPath: '.status.status' },
      { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    schema: {
      openAPIV3Schema: {
        type: 'object',
        required: ['spec', 'status'],
        properties: {
          spec: { type: 'object', required: ['run', 'node'], properties: { run: str, node: str } },
          status: nodeResultSchema(),
        },
      },
    },
  });
}

export function gadgetRunCrd(): V1CustomResourceDefinition {
  // additionalProperties is untyped in the client's model (the serializer passes it
  // through as is), so this one schema is written in the wire's own field names
  const nodeResult = {
    type: 'object',
    // nothing else: the API server prunes unknown fields (NodeResult); written by agents of the release before
    properties: {
      phase: { type: 'string', enum: ['Running', 'Succeeded', 'Failed', 'Cancelled'] },
      status: { type: 'string' },
      message: { type: 'string', maxLength: MESSAGE_MAX },
    },
  };
  return crdOf(PLURAL, 'gadgetrun', KIND, 'grun', {
    subresources: { status: {} },
    additionalPrinterColumns: [
      { name: 'Nodes', type: 'string', jsonPath: '.spec.nodes' },
      { name: 'Cancel', type: 'boolean', jsonPath: '.spec.cancel' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    schema: {
      openAPIV3Schema: {
        type: 'object',
        required: ['spec'],
        properties: {
          spec: {
            type: 'object',
            required: ['recipe'],
            properties: {
              recipe: { type: 'string', minLength: 1, description: 'the recipe YAML, as gadget-run run takes it' },
              nodes: { type: 'array', items: str, description: 'nodes to run on; empty: every node with an agent' },
              selector: {
                type: 'object',
                properties: { namespace: str, pod: str, container: str, labels: { type: 'object', additionalProperties: str } },
              },
              maxDuration: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
              cancel: { type: 'boolean' },
              inlineLimit: { type: 'string', pattern: '^[0-9]{1,6}(KiB|MiB|GiB)$' },
              fetchTokenHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
            },
          },
          status: {
            type: 'object',
            properties: { nodes: { type: 'object', additionalProperties: nodeResult } },
          },
        },
      },
    },
  });
}
