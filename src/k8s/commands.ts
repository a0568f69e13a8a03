/**
 * The Kubernetes subcommands, registered in cli.ts with one line:
 *   deploy, undeploy, agent, and `run … --cluster`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { prepareOutDir } from '../runner/cli.ts';
import { loadRecipeFile, RecipeError } from '../runner/recipe.ts';
import { renderTerminal } from '../runner/report.ts';
import { exitCodeFor } from '../runner/summary.ts';
import { agentCommand } from './agent.ts';
import { apiMessage } from './client.ts';
import { renderNodes, runOnCluster } from './cluster-run.ts';
import type { Selection } from './crd.ts';
import { deployCommand, undeployCommand } from './deploy.ts';

export const K8S_USAGE = `  gadget-run run <recipe.yaml> --cluster [--node N]... [-n NS] [-p POD] [-c CONTAINER] [-l k=v]...
                                                                 run it on every (or each --node) node of the cluster
  gadget-run deploy [--apply] [--image I] [--pull-policy P] [--caps BPF,PERFMON,...]
                                                                 print (or apply) the manifests: kubectl apply -f -
  gadget-run undeploy [--wait]                                   remove everything deploy created
  gadget-run agent                                               the per-node agent the DaemonSet runs (NODE_NAME)
`;

/** The command's exit code when argv is one of ours, else undefined. */
export function k8sCommand(argv: string[], root: string): Promise<number> | undefined {
  const [cmd, ...rest] = argv;
  if (cmd === 'deploy') return deployCommand(rest);
  if (cmd === 'undeploy') return undeployCommand(rest);
  if (cmd === 'agent') return agentCommand(rest, root);
  if (cmd === 'run' && rest.includes('--cluster')) return clusterRunCommand(rest);
  return undefined;
}

async function clusterRunCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        cluster: { type: 'boolean' },
        node: { type: 'string', multiple: true },
        namespace: { type: 'string', short: 'n' },
        pod: { type: 'string', short: 'p' },
        container: { type: 'string', short: 'c' },
        selector: { type: 'string', short: 'l', multiple: true },
        out: { type: 'string', short: 'o' },
        'max-duration': { type: 'string' },
        'update-baseline': { type: 'boolean' },
        junit: { type: 'string' },
      },
    });
  } catch (err) {
    process.stderr.write(`gadget-run run --cluster: ${(err as Error).message}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    process.stderr.write('gadget-run run --cluster: takes one recipe file\n');
    return 2;
  }
  const file = positionals[0];
  let loaded;
  try {
    loaded = loadRecipeFile(file);
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    process.stderr.write(err.message + '\n');
    return 2;
  }
  const selector: Selection = {};
  if (values.namespace) selector.namespace = values.namespace;
  if (values.pod) selector.pod = values.pod;
  if (values.container) selector.container = values.container;
  for (const l of values.selector ?? []) {
    for (const pair of l.split(',')) {
      const m = /^([^=]+)=(.*)$/.exec(pair);
      if (!m) {
        process.stderr.write(`gadget-run run --cluster: -l ${pair}: expected key=value\n`);
        return 2;
      }
      (selector.labels ??= {})[m[1]] = m[2];
    }
  }
  const outDir = values.out ?? path.join('out', loaded.recipe.name);
  prepareOutDir(outDir);
  const log = (line: string) => process.stderr.write(`gadget-run: ${line}\n`);
  // first Ctrl-C/SIGTERM: cancel on every node and merge what they captured; second: exit now
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) {
      process.stderr.write(`gadget-run: second ${signal}: exiting now (the run stays cancelled)\n`);
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    }
    process.stderr.write(`gadget-run: ${signal}: cancelling on every node (again to exit at once)\n`);
    abort.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await runOnCluster(loaded, {
      outDir,
      text: fs.readFileSync(file, 'utf8'),
      nodes: values.node?.flatMap((n) => n.split(',')).filter(Boolean),
      selector: Object.keys(selector).length ? selector : undefined,
      maxDuration: values['max-duration'],
      updateBaseline: values['update-baseline'],
      ...(values.junit !== undefined ? { junit: values.junit } : {}),
      log,
      signal: abort.signal,
    });
    process.stdout.write(renderTerminal(summary, outDir) + renderNodes(summary));
    return exitCodeFor(summary);
  } catch (err) {
    process.stderr.write(`gadget-run run --cluster: ${apiMessage(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
