/**
 * audit/egress on a container the workload starts (`podman run`): its
 * processes live in the runtime's cgroup (libpod_parent/libpod-<id>), not
 * below the workload's, and are judged from their first connect all the
 * same. The container joins the test's network namespace (--network ns:PATH),
 * where the servers and the resolver of ./helpers.ts listen; busybox's nc and
 * nslookup make the attempts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { cgroup2Mount } from '../../src/containers/discovery.ts';
import { gadgets } from '../../src/steps/index.ts';
import { busyboxRootfs, containerName, containerSkip, podmanRunArgs } from '../helpers/containers.ts';
import { bpfFds, kernelSkip } from '../helpers/kernel.ts';
import { newBpfFds } from '../helpers/leaks.ts';
import type { Netns } from '../helpers/netns.ts';
import type { Event } from '../helpers/session.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { attachedBelow, egressProgsOf, stillLoaded } from './attached.ts';
import { egressNetwork, RESOLVER, runEgress } from './helpers.ts';

const shellQuote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

/** In the container: a TCP connect to each address (ok, or the error nc printed), then a lookup of allowed.test and a connect to its answer. */
const SCRIPT = [
  'try() { if nc -w 2 "$1" 8080 </dev/null 2>/tmp/err; then echo "$1 ok"; else echo "$1 $(cat /tmp/err)"; fi; }',
  // the refused one first: the container's very first connect is judged
  'try 10.99.0.6',
  'try 10.99.0.7',
  `nslookup -type=a allowed.test ${RESOLVER} >/dev/null 2>&1 || echo "lookup failed"`,
  'try 10.99.0.2',
  // long enough for the step's container tracker (every 25 ms) to name it while it runs
  'sleep 1',
].join('\n');

/** `podman run` of the script in the test's network namespace, its output into DIR/FILE */
function containerRun(ns: Netns, out: string, name: string, rootfs: string, file = 'container.txt'): string {
  const args = podmanRunArgs(name, rootfs, ['/bin/sh', '-c', SCRIPT]);
  args[args.indexOf('--network') + 1] = `ns:${ns.path}`;
  return `podman ${args.map(shellQuote).join(' ')} > ${path.join(out, file)} 2>&1`;
}

/** The workload: its container, then a wait (bounded) for the container started outside the run to be done. */
function workload(ns: Netns, out: string, name: string, rootfs: string): string {
  const done = path.join(out, 'outside.done');
  return `${containerRun(ns, out, name, rootfs)}; for i in $(seq 300); do [ -e ${done} ] && break; sleep 0.1; done`;
}

function rootfsWithNet(t: TestContext): string {
  const rootfs = busyboxRootfs(t);
  for (const applet of ['nc', 'nslookup']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  return rootfs;
}

interface ContainerRow {
  id: string;
  name?: string;
  cgroupId: string;
  cgroupPath: string;
}

const ALLOW = `["10.99.0.7/32", "allowed.test", "${RESOLVER}:53/udp"]`;

/** what each target got in the container: "ok" or nc's error */
function outcomes(out: string, file = 'container.txt'): Record<string, string> {
  const text = fs.readFileSync(path.join(out, file), 'utf8');
  return Object.fromEntries(text.split('\n').filter((l) => /^10\./.test(l)).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
}

describe('egress on a container the workload starts', { skip: kernelSkip(gadgets['audit/egress']) || containerSkip() }, () => {
  for (const mode of ['block', 'audit'] as const) {
    test(`${mode}: the container's allowed connects (a CIDR, a name its own DNS answer gave) go through, the refused one is ${mode === 'block' ? 'EPERM' : 'let through'} and an event naming the container`, async (t) => {
      const ns = await egressNetwork(t, `egc${mode[0]}`);
      const rootfs = rootfsWithNet(t);
      const name = containerName(`egress-${mode}`);
      const before = bpfFds();
      let progs: number[] = [];
      let out = '';
      let outside: Promise<unknown> | undefined;
      const other = containerName(`outside-${mode}`);
      const run = await runEgress(t, (dir) => `name: egress-container-${mode}
run: ${JSON.stringify(workload(ns, (out = dir), name, rootfs))}
egress:
  mode: ${mode}
  allow: ${ALLOW}
`, undefined, {
        attached: () => {
          progs = egressProgsOf();
          // a container the workload did not start, while the programs are on the root: never judged
          const child = spawn('sh', ['-c', `${containerRun(ns, out, other, rootfs, 'outside.txt')}; touch ${path.join(out, 'outside.done')}`], { stdio: 'ignore' });
          outside = once(child, 'exit');
        },
        captured: () => {},
      });
      await outside;
      const container = (JSON.parse(fs.readFileSync(path.join(run.out, 'run', 'raw', 'containers.json'), 'utf8')).containers as ContainerRow[]).find((c) => c.name === name);
      assert.ok(container, 'the step named the container (raw/containers.json)');
      assert.match(container.id, /^[0-9a-f]{64}$/);
      assert.match(container.cgroupPath, /\/libpod-[0-9a-f]{64}/, 'it ran in its runtime\'s cgroup');
      assert.ok(!container.cgroupPath.includes('/gadget-run/'), `not below the workload's cgroup: ${container.cgroupPath}`);

      assert.deepEqual(outcomes(run.out), {
        '10.99.0.7': 'ok',
        '10.99.0.6': mode === 'block' ? "nc: can't connect to remote host (10.99.0.6): Operation not permitted" : 'ok',
        '10.99.0.2': 'ok',
      }, fs.readFileSync(path.join(run.out, 'container.txt'), 'utf8'));

      assert.deepEqual(outcomes(run.out, 'outside.txt'), { '10.99.0.6': 'ok', '10.99.0.7': 'ok', '10.99.0.2': 'ok' }, 'the container started outside the run is not judged');
      assert.equal(run.events.length, 1, `one event, the run's container's: ${JSON.stringify(run.events)}`);
      const [e] = run.events;
      assert.deepEqual([e.daddr, e.dport, e.proto, e.hook, e.verdict, e.comm], ['10.99.0.6', 8080, 'tcp', 'connect', mode === 'block' ? 'refused' : 'reported', 'nc']);
      assert.equal(String(e.cgroup_id), container.cgroupId, 'the event is the container\'s: evaluation names it by its cgroup');
      const step = run.summary.steps.find((s) => s.id === 'egress')!;
      assert.equal(step.lost, 0);
      if (mode === 'block') {
        assert.equal(run.summary.status, 'failed');
        const evidence = run.summary.assertions.find((a) => a.name === 'egress: nothing refused')?.evidence;
        assert.deepEqual(evidence?.events?.map((x: Event) => [x.container_name, x.daddr]), [[name, '10.99.0.6']], 'the evidence names the container');
      } else {
        assert.equal(run.summary.status, 'passed', run.summary.reasons.join('\n'));
      }

      // enforcement ended with the run: nothing of it attached anywhere, nothing held
      assert.equal(progs.length, 5, 'the run held its five egress programs');
      for (let i = 0; i < 100 && (attachedBelow(cgroup2Mount(), progs).length || stillLoaded(progs).length); i++) await sleep(50);
      assert.deepEqual(attachedBelow(cgroup2Mount(), progs), [], 'bpftool cgroup tree: none of the run\'s programs on any cgroup');
      assert.deepEqual(stillLoaded(progs), [], 'bpftool prog show: the programs are gone');
      assert.deepEqual(newBpfFds(before), [], 'the run holds no BPF fd');
    });
  }
});
