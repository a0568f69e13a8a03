/**
 * The GadgetRun custom resource: one run of a recipe on a set of nodes.
 * The CLI (or a runbook's `kubectl apply -f`) creates it in the `gadget`
 * namespace; each node's agent watches GadgetRuns, runs its share and answers
 * in status.nodes.<node> (a JSON merge patch of its own key only, so agents on
 * different nodes never conflict), with its captured results in ConfigMaps
 * owned by the run (results.ts) so deleting the run collects them.
 */
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
}

export type NodePhase = 'Running' | 'Uploading' | 'Succeeded' | 'Failed' | 'Cancelled';

export interface NodeStepResult {
  id: string;
  status: string;
  events: number;
  lost: number;
  reason?: string;
}

/** One node's answer, status.nodes.<node>. */
export interface NodeResult {
  phase: NodePhase;
  startedAt?: string;
  finishedAt?: string;
  /** why the node failed, or what it is doing */
  message?: string;
  /** the node's own run summary status (passed, failed, error, interrupted) */
  status?: string;
  steps?: NodeStepResult[];
  /** pods of the selection found on this node */
  pods?: string[];
  /** result ConfigMaps written (results.ts) and the compressed bytes in them */
  chunks?: number;
  bytes?: number;
  /** requests this agent made to the API server for this run (scale figure) */
  apiCalls?: number;
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
    // the summary's fields grow with the runner; the API server keeps them as written
    'x-kubernetes-preserve-unknown-fields': true,
    properties: { phase: { type: 'string', enum: ['Running', 'Uploading', 'Succeeded', 'Failed', 'Cancelled'] }, message: { type: 'string' } },
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
