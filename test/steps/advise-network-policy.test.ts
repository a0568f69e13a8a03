/**
 * advise/network-policy: the generator over recorded events (the cgroup
 * pairing of peers on this node, the pod-IP path, ipBlocks), the .yaml
 * output, a real run whose policy is checked against the connections the test
 * made, and the real API server accepting the documents (server-side apply, dry run).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { once } from 'node:events';
import { parseAllDocuments } from 'yaml';
import { networkPolicies, PLACEHOLDER_NOTE, PLACEHOLDER_SELECTOR, type PodRef } from '../../src/gadgets/advise/network-policy/policies.ts';
import { gadgets } from '../../src/steps/index.ts';
import { writeOutput } from '../../src/runner/artifacts.ts';
import type { ContainerTable } from '../../src/containers/table.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { skipK8s, useCluster, type Cluster } from '../k8s/cluster.ts';
import { startDnsServer } from '../helpers/dns.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { tcpServer, udpSocket } from '../helpers/net.ts';
import { runCli, tempDir, writeRecipe } from '../runner/cli-helpers.ts';
import { captured } from '../runner/evaluate-helpers.ts';
import { evaluate } from '../../src/runner/evaluate.ts';
import { parseRecipe } from '../../src/runner/recipe.ts';

const def = gadgets['advise/network-policy'];

// The k8s branch's test cluster (scripts/k8s-cluster.mjs): its kubectl and admin kubeconfig, at the harness's default paths
const K8S_CACHE = process.env.GADGET_RUN_K8S_CACHE ?? '/var/cache/gadget-run/k8s-1.20.2';
const KUBECTL = path.join(K8S_CACHE, 'bin/kubectl');
const KUBECONFIG = path.join(process.env.GADGET_RUN_K8S_STATE ?? '/run/gadget-run-k8s', 'admin.kubeconfig');
function clusterSkip(): string | false {
  if (!fs.existsSync(KUBECTL) || !fs.existsSync(KUBECONFIG)) {
    return `needs the Kubernetes test cluster of the k8s branch running (node scripts/k8s-cluster.mjs up): ${KUBECTL} and ${KUBECONFIG}`;
  }
  const r = spawnSync(KUBECTL, ['get', '--raw', '/readyz'], { env: { ...process.env, KUBECONFIG }, encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? false : `needs the k8s test cluster's API server up (node scripts/k8s-cluster.mjs up): kubectl get --raw /readyz said ${(r.stderr || r.stdout).trim()}`;
}

/**
 * The test cluster, shared by this file's tests that need the API server:
 * started at the first (CI builds it before `npm test`, and the k8s test files
 * stop theirs), and stopped after the file only when it was started here.
 */
let cluster: Promise<Cluster> | undefined;
function apiServer(): Promise<Cluster> {
  cluster ??= useCluster();
  return cluster;
}
after(async () => {
  await (await cluster?.catch(() => undefined))?.stop();
});

/** Server-side apply, dry run: what the API server says of the documents (validation and defaulting run; nothing is stored). */
function serverDryRun(yamlText: string, namespace?: string): { status: number | null; out: string } {
  const r = spawnSync(KUBECTL, ['apply', '--server-side', '--dry-run=server', '--field-manager=gadget-run-test', ...(namespace ? ['-n', namespace] : []), '-f', '-', '-o', 'name'], {
    env: { ...process.env, KUBECONFIG }, input: yamlText, encoding: 'utf8', timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

// Recorded events: two hostNetwork pods sharing the node IP 10.0.0.5 (so only the 4-tuple tells them apart), one pod with its own IP.
const NODE_IP = '10.0.0.5';
const container = (cgroupId: string, namespace: string, pod: string, labels: Record<string, string>, owner?: string, ips?: string[]) => ({
  id: cgroupId.padStart(64, 'c'), runtime: 'containerd' as const, cgroupId, cgroupPath: `/kubepods/${pod}`,
  k8s: { namespace, pod, container: 'main', labels, ...(owner ? { owner } : {}), ...(ips ? { ips } : {}) },
});
const TABLE = {
  containers: [
    container('101', 'default', 'web-6d9f-abcde', { app: 'web', 'pod-template-hash': '6d9f' }, 'Deployment/web', [NODE_IP]),
    container('102', 'kube-system', 'db-0', { app: 'db', 'controller-revision-hash': 'db-77', 'statefulset.kubernetes.io/pod-name': 'db-0' }, 'StatefulSet/db', [NODE_IP]),
    // a resolver pod on this node, hostNetwork too, reached through the kube-dns Service's cluster IP
    container('103', 'kube-system', 'coredns-2', { 'k8s-app': 'kube-dns', 'pod-template-hash': '5d7' }, 'Deployment/coredns', [NODE_IP]),
  ],
  steps: {},
} satisfies ContainerTable;
/** pods not on this node: the IP path */
const POD_LIST: PodRef[] = [
  { namespace: 'kube-system', pod: 'coredns-1', labels: { 'k8s-app': 'kube-dns' }, owner: 'Deployment/coredns', ips: ['10.244.1.3'] },
  // two hostNetwork pods elsewhere share 10.0.0.9: an address that names no single pod
  { namespace: 'default', pod: 'a', labels: { app: 'a' }, ips: ['10.0.0.9'] },
  { namespace: 'default', pod: 'b', labels: { app: 'b' }, ips: ['10.0.0.9'] },
  ...TABLE.containers.map((c) => ({ namespace: c.k8s.namespace, pod: c.k8s.pod, labels: c.k8s.labels, owner: c.k8s.owner, ips: c.k8s.ips })),
];
const ev = (cgroup_id: number, operation: string, saddr: string, sport: number, daddr: string, dport: number, ret = 0) =>
  ({ operation, cgroup_id, saddr, sport, daddr, dport, ret, pid: 1, comm: 'x', ipversion: saddr.includes(':') ? 6 : 4 });
/** a UDP send (or receive: daddr is the peer) as bpf/advise_network.bpf.c reports it (the first per process, local port and peer), at second `at` */
const udp = (cgroup_id: number, saddr: string, sport: number, daddr: string, dport: number, at: number, operation = 'udp_send') =>
  ({ ...ev(cgroup_id, operation, saddr, sport, daddr, dport), timestamp: `2026-01-01T00:00:${String(at).padStart(2, '0')}.000000000Z` });
const EVENTS = [
  // web → db:5432, both ends traced here (same node IP): paired by the 4-tuple
  ev(101, 'connect', NODE_IP, 40001, NODE_IP, 5432),
  ev(102, 'accept', NODE_IP, 5432, NODE_IP, 40001, 7),
  ev(101, 'close', NODE_IP, 40001, NODE_IP, 5432),
  // a second connection on the same port: one rule, one port
  ev(101, 'connect', NODE_IP, 40002, NODE_IP, 5432),
  ev(102, 'accept', NODE_IP, 5432, NODE_IP, 40002, 8),
  // web → coredns over TCP 53 (not traced here): by its pod IP
  ev(101, 'connect', NODE_IP, 40003, '10.244.1.3', 53),
  // web → 10.0.0.9:9000, an IP two pods share: an ipBlock
  ev(101, 'connect', NODE_IP, 40004, '10.0.0.9', 9000),
  // web accepts on 8080 from outside the cluster, v4-mapped on a v6 socket, and from a v6 address
  ev(101, 'accept', '::ffff:10.0.0.5', 8080, '::ffff:192.0.2.7', 51000, 9),
  ev(101, 'accept', '2001:db8::5', 8443, '2001:db8::7', 52000, 10),
  ev(101, 'accept', '2001:db8::5', 8080, '2001:db8::7', 52001, 11),
  // refused: no traffic to allow
  ev(101, 'connect', NODE_IP, 40005, '192.0.2.99', 80, -111),
  // web's DNS over UDP to the kube-dns Service IP; coredns-2 (traced here) receives it on its wildcard socket and answers:
  // paired by web's end and port 53 (not by address: web sent to the Service IP); web receiving the answer is no ingress
  udp(101, NODE_IP, 41000, '10.96.0.10', 53, 1),
  udp(103, '0.0.0.0', 53, NODE_IP, 41000, 2, 'udp_recv'),
  udp(103, '0.0.0.0', 53, NODE_IP, 41000, 3),
  udp(101, NODE_IP, 41000, '10.96.0.10', 53, 4, 'udp_recv'),
  // coredns-2 also serves a client outside the cluster: received first, so ingress on 53 and its answer no egress
  udp(103, '0.0.0.0', 53, '192.0.2.80', 5353, 5, 'udp_recv'),
  udp(103, '0.0.0.0', 53, '192.0.2.80', 5353, 6),
  // and to coredns-1's pod IP (not traced here): by its IP, one rule with TCP 53
  udp(101, NODE_IP, 41001, '10.244.1.3', 53, 7),
  // NTP outside the cluster: an ipBlock
  udp(101, NODE_IP, 41002, '192.0.2.50', 123, 8),
];
const podPeer = (namespace: string, labels: Record<string, string>) => ({ podSelector: { matchLabels: labels }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } });
const tcp = (...ports: number[]) => ports.map((port) => ({ protocol: 'TCP', port }));
const udpPorts = (...ports: number[]) => ports.map((port) => ({ protocol: 'UDP', port }));
const EXPECTED = [
  {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'web', namespace: 'default' },
    spec: {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { from: [{ ipBlock: { cidr: '192.0.2.7/32' } }], ports: tcp(8080) },
        { from: [{ ipBlock: { cidr: '2001:db8::7/128' } }], ports: tcp(8080, 8443) },
      ],
      egress: [
        { to: [{ ipBlock: { cidr: '10.0.0.9/32' } }], ports: tcp(9000) },
        { to: [{ ipBlock: { cidr: '192.0.2.50/32' } }], ports: udpPorts(123) },
        { to: [podPeer('kube-system', { app: 'db' })], ports: tcp(5432) },
        // DNS: TCP and UDP 53 to the resolver pods (one paired by its answer, one by its IP: the same selector)
        { to: [podPeer('kube-system', { 'k8s-app': 'kube-dns' })], ports: [...tcp(53), ...udpPorts(53)] },
      ],
    },
  },
  {
    // the resolver's answers are no egress of their own: ingress on UDP 53 from its clients
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'coredns', namespace: 'kube-system' },
    spec: {
      podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } }, policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ ipBlock: { cidr: '192.0.2.80/32' } }], ports: udpPorts(53) }, { from: [podPeer('default', { app: 'web' })], ports: udpPorts(53) }], egress: [],
    },
  },
  {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'db', namespace: 'kube-system' },
    spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [podPeer('default', { app: 'web' })], ports: tcp(5432) }], egress: [] },
  },
];

describe('advise/network-policy generator (recorded events, no root)', () => {
  test('peers on this node by the 4-tuple (hostNetwork pods sharing an IP), others by pod IP, the rest ipBlocks; sorted', () => {
    const docs = networkPolicies(EVENTS, { containers: TABLE, pods: POD_LIST });
    // sorted by namespace then name: default/web before kube-system/db
    assert.deepEqual(docs, EXPECTED);
    // the order of the events does not matter
    assert.deepEqual(networkPolicies([...EVENTS].reverse(), { containers: TABLE, pods: POD_LIST }), EXPECTED);
  });

  test('a selection chooses whose policies are written; the others still name the peers (by the 4-tuple, by the answer)', () => {
    const names = (docs: Record<string, unknown>[]) => docs.map((d) => (d.metadata as { name: string }).name);
    // -l app=db: only db's policy, its ingress still from the web pod (paired by the 4-tuple with web's events)
    const db = networkPolicies(EVENTS, { containers: TABLE, pods: POD_LIST, selection: { labels: { app: 'db' } } });
    assert.deepEqual(db, [EXPECTED[2]]);
    // -n kube-system: db and coredns, exactly as without a selection
    assert.deepEqual(networkPolicies(EVENTS, { containers: TABLE, pods: POD_LIST, selection: { namespace: 'kube-system' } }), EXPECTED.slice(1));
    // -p and -c: by pod name, by container name
    assert.deepEqual(names(networkPolicies(EVENTS, { containers: TABLE, pods: POD_LIST, selection: { pod: 'web-6d9f-abcde', container: 'main' } })), ['web']);
    // nothing matches: no policy at all (not one for the node's other processes)
    assert.deepEqual(networkPolicies(EVENTS, { containers: TABLE, pods: POD_LIST, selection: { namespace: 'shop' } }), []);
    // events of no known container (the node's own processes) are never a selection's subject
    assert.deepEqual(networkPolicies([ev(7, 'connect', '127.0.0.1', 4000, '127.0.0.1', 6000)], { containers: TABLE, selection: {} }), []);
  });

  test('evaluation generates the selection\'s documents from the step\'s meta, and says so when nothing matched it', async () => {
    const { recipe } = parseRecipe('name: np\nduration: 1s\nsteps:\n  - id: np\n    gadget: advise/network-policy\n    outputs: [p.json]\n', 'np.yaml');
    const fields = def.fields.map((f) => f.name);
    const names = async (documents: Record<string, unknown>) => {
      const dir = tempDir();
      captured(dir, { np: EVENTS }, fields, { np: { gadget: def.id, documents } });
      fs.writeFileSync(path.join(dir, 'raw', 'containers.json'), JSON.stringify(TABLE));
      const ev = await evaluate(recipe, dir);
      const docs = JSON.parse(fs.readFileSync(path.join(dir, 'p.json'), 'utf8')) as Record<string, unknown>[];
      return { names: docs.map((d) => (d.metadata as { name: string }).name), warnings: ev.steps[0].warnings ?? [] };
    };
    assert.deepEqual(await names({ labels: { app: 'db' } }), { names: ['db'], warnings: [] });
    const none = await names({ namespace: 'shop' });
    assert.deepEqual(none.names, []);
    assert.deepEqual(none.warnings, ['no container matched the selection {"namespace":"shop"}: no documents were generated for it']);
  });

  test('without the 4-tuple pairing, an IP two pods share names neither: the node IP becomes an ipBlock', () => {
    const docs = networkPolicies([EVENTS[0]], { containers: TABLE, pods: POD_LIST });
    assert.deepEqual((docs[0].spec as { egress: unknown }).egress, [{ to: [{ ipBlock: { cidr: `${NODE_IP}/32` } }], ports: tcp(5432) }]);
  });

  test('UDP: unpaired, a Service IP is an ipBlock; without receives, who sent first began; an unbound sender pairs with nothing', () => {
    const egressOf = (events: Record<string, unknown>[]) => networkPolicies(events, { containers: TABLE, pods: POD_LIST }).map((d) => [(d.metadata as { name: string }).name, (d.spec as { egress: unknown }).egress]);
    assert.deepEqual(egressOf([udp(101, NODE_IP, 41000, '10.96.0.10', 53, 1)]), [['web', [{ to: [{ ipBlock: { cidr: '10.96.0.10/32' } }], ports: udpPorts(53) }]]]);
    // no receives seen (the answer alone tells): web's query came first, so coredns's send is its answer, not egress
    assert.deepEqual(egressOf([udp(101, NODE_IP, 41000, '10.96.0.10', 53, 1), udp(103, '0.0.0.0', 53, NODE_IP, 41000, 2)]), [
      ['web', [{ to: [podPeer('kube-system', { 'k8s-app': 'kube-dns' })], ports: udpPorts(53) }]],
      ['coredns', []],
    ]);
    // the other way round, coredns began: web's send from 41000 is the answer, and coredns has the egress
    assert.deepEqual(egressOf([udp(103, '0.0.0.0', 53, NODE_IP, 41000, 1), udp(101, NODE_IP, 41000, '10.96.0.10', 53, 2)]), [
      ['web', []],
      ['coredns', [{ to: [podPeer('default', { app: 'web' })], ports: udpPorts(41000) }]],
    ]);
    // an answer to a sender outside the traced cgroups, without its receive: egress to that sender (the limit the receive hooks lift)
    assert.deepEqual(egressOf([udp(103, '0.0.0.0', 53, '192.0.2.80', 5353, 1)]), [['coredns', [{ to: [{ ipBlock: { cidr: '192.0.2.80/32' } }], ports: udpPorts(5353) }]]]);
    // port 0: the socket was bound by this very send, so the sender's end is unknown and no answer pairs with it
    assert.deepEqual(egressOf([udp(101, '0.0.0.0', 0, '10.96.0.10', 53, 1), udp(103, '0.0.0.0', 53, NODE_IP, 41000, 2)]).map(([n]) => n), ['web', 'coredns']);
  });

  test('a workload outside Kubernetes: one policy with the placeholder podSelector and a note', () => {
    const docs = networkPolicies([ev(7, 'connect', '127.0.0.1', 4000, '127.0.0.1', 6000), ev(7, 'accept', '::1', 7000, '::1', 4100, 3)]);
    assert.deepEqual(docs, [{
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'workload', annotations: { 'gadget-run.dev/note': PLACEHOLDER_NOTE } },
      spec: {
        podSelector: { matchLabels: PLACEHOLDER_SELECTOR }, policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ ipBlock: { cidr: '::1/128' } }], ports: tcp(7000) }],
        egress: [{ to: [{ ipBlock: { cidr: '127.0.0.1/32' } }], ports: tcp(6000) }],
      },
    }]);
  });

  test('.yaml output: one document per record, key order kept', async () => {
    const dir = tempDir();
    const from = path.join(dir, 'in.ndjson');
    fs.writeFileSync(from, EXPECTED.map((d) => JSON.stringify(d) + '\n').join(''));
    const out = path.join(dir, 'p.yaml');
    await writeOutput(out, { file: from, shape: 'list' });
    const text = fs.readFileSync(out, 'utf8');
    assert.deepEqual(parseAllDocuments(text).map((d) => d.toJS()), EXPECTED);
    assert.match(text, /^---\napiVersion: networking\.k8s\.io\/v1\nkind: NetworkPolicy\nmetadata:\n  name: web\n  namespace: default\nspec:\n/);
    fs.writeFileSync(from, '');
    await writeOutput(out, { file: from, shape: 'list' });
    assert.equal(fs.readFileSync(out, 'utf8'), '');
  });

  // brings the test cluster up itself (the cluster tests stop theirs), as root: the API server must answer for real
  test('the API server accepts the generated pod policies (server-side apply, dry run)', { skip: skipK8s, timeout: 600_000 }, async () => {
    await apiServer();
    const why = clusterSkip();
    assert.equal(why, false, `the test cluster is up: ${why}`);
    const dir = tempDir();
    const from = path.join(dir, 'in.ndjson');
    fs.writeFileSync(from, networkPolicies(EVENTS, { containers: TABLE, pods: POD_LIST }).map((d) => JSON.stringify(d) + '\n').join(''));
    await writeOutput(path.join(dir, 'p.yaml'), { file: from, shape: 'list' });
    const r = serverDryRun(fs.readFileSync(path.join(dir, 'p.yaml'), 'utf8'));
    assert.equal(r.status, 0, r.out);
    assert.deepEqual(r.out.trim().split('\n').sort(), ['networkpolicy.networking.k8s.io/coredns', 'networkpolicy.networking.k8s.io/db', 'networkpolicy.networking.k8s.io/web']);
    // the UDP rules went through as they are: the web policy's DNS egress and coredns's UDP ingress
    assert.match(fs.readFileSync(path.join(dir, 'p.yaml'), 'utf8'), /protocol: UDP\n\s+port: 53/);
    // the check can fail: the same API server refuses a policy with an impossible cidr
    const broken = serverDryRun(fs.readFileSync(path.join(dir, 'p.yaml'), 'utf8').replace('2001:db8::7/128', '2001:db8::7/129'));
    assert.notEqual(broken.status, 0, broken.out);
    assert.match(broken.out, /cidr|CIDR/);
  });
});

describe('advise/network-policy in a real run', { skip: kernelSkip(def) }, () => {
  // the policy the first test generated, for the API server's dry run (a test of its own: the kernel
  // matrix runs the capture on other kernels, where no test cluster runs)
  let generated: string | undefined;
  test('a workload that connects to port A and accepts on port B: exactly those two rules', async (t) => {
    const { port: portA } = await tcpServer(t, '127.0.0.1');
    const dir = tempDir();
    const ready = path.join(dir, 'listening');
    // the workload: connect to the test's server on A, then accept one connection on B (it says which port when it listens)
    const script = `const net = require('node:net'); const fs = require('node:fs');
const c = net.connect(${portA}, '127.0.0.1', () => { c.destroy();
  const s = net.createServer((x) => { x.destroy(); s.close(); }).listen(0, '::1', () => fs.writeFileSync(${JSON.stringify(ready)}, String(s.address().port))); });`;
    fs.writeFileSync(path.join(dir, 'w.js'), script);
    const recipe = writeRecipe(dir, 'netpol.yaml', `name: netpol
run: ${JSON.stringify(`${process.execPath} ${path.join(dir, 'w.js')}`)}
timeout: 1m
steps:
  - id: policy
    gadget: advise/network-policy
    outputs: [policy.yaml, policy.json]
assertions:
  - name: one policy
    expr: '$count(steps.policy) = 1'
`);
    const out = path.join(dir, 'out');
    const cli = runCli(['run', recipe, '--out', out]);
    // the client inside the workload's reach: the test connects to B once the workload listens
    let portB = 0;
    for (let i = 0; i < 600 && !portB; i++) {
      if (fs.existsSync(ready) && fs.readFileSync(ready, 'utf8')) portB = Number(fs.readFileSync(ready, 'utf8'));
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(portB, 'the workload never listened');
    const c = net.connect(portB, '::1');
    await new Promise((resolve, reject) => c.once('connect', resolve).once('error', reject));
    c.destroy();
    const r = await cli;
    assert.equal(r.code, 0, r.stderr);
    const text = fs.readFileSync(path.join(out, 'policy.yaml'), 'utf8');
    assert.equal(text, `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: workload
  annotations:
    gadget-run.dev/note: "${PLACEHOLDER_NOTE}"
spec:
  podSelector:
    matchLabels:
      gadget-run.dev/placeholder: replace-with-your-pod-labels
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - ipBlock:
            cidr: ::1/128
      ports:
        - protocol: TCP
          port: ${portB}
  egress:
    - to:
        - ipBlock:
            cidr: 127.0.0.1/32
      ports:
        - protocol: TCP
          port: ${portA}
`);
    // the connections as captured stay in raw/
    const raw = fs.readFileSync(path.join(out, 'raw/policy.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(raw.some((e) => e.operation === 'connect' && e.dport === portA), JSON.stringify(raw));
    assert.ok(raw.some((e) => e.operation === 'accept' && e.sport === portB), JSON.stringify(raw));
    generated = text;
  });

  test('the API server accepts that policy as written (server-side dry run)', async () => {
    assert.ok(generated, 'the previous test generated no policy');
    await apiServer();
    assert.equal(clusterSkip(), false, 'the test cluster is up');
    const applied = serverDryRun(generated, 'default');
    assert.equal(applied.status, 0, applied.out);
    assert.equal(applied.out.trim(), 'networkpolicy.networking.k8s.io/workload');
  });

  test('UDP: real DNS queries (dns_query: connect and send; getent: glibc\'s sendmmsg) and a datagram to an address (sendmsg): egress UDP 53 with TCP 53, and UDP to the other port', async (t) => {
    // a loopback address of its own: port 53 of it is free whatever else runs on this machine
    const resolver = `127.${1 + (process.pid % 200)}.${Math.floor(Math.random() * 250) + 1}.53`;
    const dns = await startDnsServer(resolver);
    t.after(() => dns.close());
    await tcpServer(t, resolver, 53);
    const { port: sinkPort } = await udpSocket(t, 'udp6', '::1');
    const query = compileFixture(t, 'dns_query');
    const dir = tempDir();
    // dns_query: connect() then send() (the sock's peer is the destination); node's dgram: a send with an address; then TCP to the resolver;
    // then a UDP server of the workload's own answers one datagram from the test (it says which port when it listens)
    const ready = path.join(dir, 'listening');
    const script = `const dgram = require('node:dgram'); const net = require('node:net'); const fs = require('node:fs');
const u = dgram.createSocket('udp6'); u.send('x', ${sinkPort}, '::1', (err) => { if (err) throw err; u.close();
  const c = net.connect(53, ${JSON.stringify(resolver)}, () => { c.destroy();
    const srv = dgram.createSocket('udp4');
    srv.on('message', (m, from) => srv.send('answer', from.port, from.address, () => srv.close()));
    srv.bind(0, '127.0.0.1', () => fs.writeFileSync(${JSON.stringify(ready)}, String(srv.address().port))); }); });`;
    fs.writeFileSync(path.join(dir, 'w.js'), script);
    // glibc's own resolver too (connect, then sendmmsg of the A and AAAA queries), pointed at the test's server
    // by a resolv.conf bind-mounted in a mount namespace of its own (the machine's stays as it is)
    fs.writeFileSync(path.join(dir, 'resolv.conf'), `nameserver ${resolver}\noptions attempts:2 timeout:5\n`);
    const getent = `unshare -m sh -c 'mount --bind ${path.join(dir, 'resolv.conf')} /etc/resolv.conf && exec getent ahosts resolv.example'`;
    const cmd = `${query} ${resolver} 53 policy.example 1 1 && ${getent} && ${process.execPath} ${path.join(dir, 'w.js')}`;
    const recipe = writeRecipe(dir, 'netpol-udp.yaml', `name: netpol-udp
run: ${JSON.stringify(`/bin/sh -c ${JSON.stringify(cmd)}`)}
timeout: 1m
steps:
  - id: policy
    gadget: advise/network-policy
    outputs: [policy.yaml]
`);
    const out = path.join(dir, 'out');
    const cli = runCli(['run', recipe, '--out', out]);
    let serverPort = 0;
    for (let i = 0; i < 600 && !serverPort; i++) {
      if (fs.existsSync(ready) && fs.readFileSync(ready, 'utf8')) serverPort = Number(fs.readFileSync(ready, 'utf8'));
      else await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(serverPort, 'the workload never listened on UDP');
    // the test's client (not traced): one datagram, and the workload's answer
    const { socket: client, port: clientPort } = await udpSocket(t, 'udp4', '127.0.0.1');
    const answered = once(client, 'message');
    client.send('query', serverPort, '127.0.0.1');
    assert.equal(String((await answered)[0]), 'answer');
    const r = await cli;
    assert.equal(r.code, 0, r.stderr);
    const text = fs.readFileSync(path.join(out, 'policy.yaml'), 'utf8');
    const docs = parseAllDocuments(text).map((d) => d.toJS());
    assert.equal(docs.length, 1, text);
    assert.deepEqual(docs[0].spec, {
      podSelector: { matchLabels: PLACEHOLDER_SELECTOR },
      policyTypes: ['Ingress', 'Egress'],
      // the workload's UDP server: ingress on its port; its answer to the client's port is no egress
      ingress: [{ from: [{ ipBlock: { cidr: '127.0.0.1/32' } }], ports: [{ protocol: 'UDP', port: serverPort }] }],
      egress: [
        { to: [{ ipBlock: { cidr: `${resolver}/32` } }], ports: [{ protocol: 'TCP', port: 53 }, { protocol: 'UDP', port: 53 }] },
        { to: [{ ipBlock: { cidr: '::1/128' } }], ports: [{ protocol: 'UDP', port: sinkPort }] },
      ],
    });
    // one udp event per process and destination, whatever number of datagrams
    const raw = fs.readFileSync(path.join(out, 'raw/policy.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const udpOf = (op: string) => [...new Set(raw.filter((e) => e.operation === op).map((e) => JSON.stringify([e.comm, e.daddr, e.dport, e.ipversion])))].sort().map((j) => JSON.parse(j));
    assert.deepEqual(udpOf('udp_send'), [['dns_query', resolver, 53, 4], ['getent', resolver, 53, 4], ['node', '127.0.0.1', clientPort, 4], ['node', '::1', sinkPort, 6]], JSON.stringify(raw));
    // the answers the resolvers' clients received, and the query the workload's server received
    assert.deepEqual(udpOf('udp_recv'), [['dns_query', resolver, 53, 4], ['getent', resolver, 53, 4], ['node', '127.0.0.1', clientPort, 4]], JSON.stringify(raw));
    // every send's local end is bound by the time it is reported (connect(), or the send itself)
    assert.ok(raw.filter((e) => e.operation === 'udp_send').every((e) => e.sport > 0), JSON.stringify(raw));
    await apiServer();
    assert.equal(clusterSkip(), false, 'the test cluster is up');
    const applied = serverDryRun(text, 'default');
    assert.equal(applied.status, 0, applied.out);
  });
});
