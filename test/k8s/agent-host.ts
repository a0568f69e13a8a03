/**
 * Many simulated nodes' agents in one process, for scale runs past what one Node
 * process per node allows (500 × ~50 MB of RSS is more than this shared machine
 * spares). Each node is its own Agent of src/k8s/agent.ts — the class
 * `gadget-run agent --fake` runs — with its own node name, its own KubeConfig and
 * API client (the ServiceAccount token's kubeconfig: the identity its pod would
 * have), its own watch of GadgetRuns and its own work dir: per node, the requests
 * and the code path are a real agent's. Only the process, and with it the event
 * loop and the heap, is shared.
 *
 *   node --import tsx test/k8s/agent-host.ts KUBECONFIG WORK_DIR READY_FILE NODE...
 *
 * READY_FILE is written once every agent is watching; SIGTERM stops them all as
 * the agent's own SIGTERM does (runs upload what they captured). Each agent's log
 * lines go to stderr as the agent's do: `gadget-run agent [NODE]: …`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent } from '../../src/k8s/agent.ts';
import { Api } from '../../src/k8s/client.ts';
import { defaultObjectDir } from '../../src/util/package-root.ts';

const [kubeconfig, workRoot, readyFile, ...nodes] = process.argv.slice(2);
if (!kubeconfig || !workRoot || !readyFile || !nodes.length) {
  process.stderr.write('usage: agent-host.ts KUBECONFIG WORK_DIR READY_FILE NODE...\n');
  process.exit(2);
}
// every run adds its SIGINT/SIGTERM handlers (as in a real agent); 50 nodes' runs at once are not a leak
process.setMaxListeners(0);

const agents = nodes.map((node) => {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const workDir = path.join(workRoot, node);
  fs.mkdirSync(workDir, { recursive: true });
  return new Agent({ node, fake: true, objectDir: defaultObjectDir(), workDir, log: (line) => process.stderr.write(`gadget-run agent [${node}]: ${line}\n`) }, new Api(kc));
});
// started together, as the DaemonSet's pods would
await Promise.all(agents.map((a) => a.start()));
fs.writeFileSync(readyFile, `${nodes.length}\n`);

const signal = await new Promise<NodeJS.Signals>((resolve) => {
  process.once('SIGTERM', () => resolve('SIGTERM'));
  process.once('SIGINT', () => resolve('SIGINT'));
});
process.stderr.write(`agent-host: ${signal}: stopping ${agents.length} agents\n`);
await Promise.all(agents.map((a) => a.stop()));
// the clients' keep-alive sockets outlive their watches
setTimeout(() => process.exit(0), 500).unref();
