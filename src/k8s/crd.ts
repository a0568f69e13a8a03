/**
 * The GadgetRun custom resource: one run of a recipe on a set of nodes.
 * The CLI (or a runbook's `kubectl apply -f`) creates it in the `gadget`
 * namespace; each node's agent watches GadgetRuns, runs its share and answers
 * in status.nodes.<node> (a JSON merge patch of its own key only: phase,
 * status, message), with its full answer and captured results in ConfigMaps
 * owned by the run (results.ts) so deleting the run collects them.
 */
import type { ServedResult } from './serve.ts';
import type { V1CustomResourceDefinition, V1JSONSchemaProps, V1ObjectMeta } from '@kubernetes/client-node';

export const GROUP = 'gadget-run.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'gadgetruns';
export const KIND = 'GadgetRun';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const NAMESPACE = 'gadget';

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
 * One node's entry in the run's status, status.nodes.<node>: what a runbook reads
 * with kubectl, and all that 50 agents write into the one object. Kept small on
 * purpose: every write to it is serialised by the API server (optimistic
 * concurrency on one etcd key) and sent to every watcher, so its cost grows with
 * its size (measured: 50 nodes' full results drew 504s, docs/kubernetes.md).
 * The rest of the node's answer is its result object (NodeReport, results.ts).
 */
export interface NodeResult {
  phase: NodePhase;
  /** the node's own run summary status (passed, failed, error, interrupted) */
  status?: string;
  /** why the node failed (at most MESSAGE_MAX characters here; whole in its NodeReport) */
  message?: string;
}

/** status.nodes.<node>.message is cut to this; the result object has it whole */
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
  nodes?: Record<string, NodeResult>;
}

export interface GadgetRun {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta & { name: string };
  spec: GadgetRunSpec;
  status?: GadgetRunStatus;
}

const str: V1JSONSchemaProps = { type: 'string' };

export function gadgetRunCrd(): V1CustomResourceDefinition {
  // additionalProperties is untyped in the client's model (the serializer passes it
  // through as is), so this one schema is written in the wire's own field names
  const nodeResult = {
    type: 'object',
    // nothing else: the API server prunes unknown fields, so the shared object stays small (NodeResult)
    properties: {
      phase: { type: 'string', enum: ['Running', 'Succeeded', 'Failed', 'Cancelled'] },
      status: { type: 'string' },
      message: { type: 'string', maxLength: MESSAGE_MAX },
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'gadget-run' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural: PLURAL, singular: 'gadgetrun', kind: KIND, listKind: `${KIND}List`, shortNames: ['grun'] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
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
        },
      ],
    },
  };
}
