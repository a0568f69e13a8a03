/**
 * The one command table: the cluster commands are rows of it, with the same options as every
 * other command (-o the output format, --out/-O the folder), and docs/cli.md is generated from
 * it. These run the real CLI; none of them reaches a cluster: each is refused, or answered,
 * before the first request.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cliReference } from '../../src/cli/commands.ts';
import { ROOT, runCli, tempDir } from '../runner/cli-helpers.ts';

const RECIPE = path.join(ROOT, 'recipes/quickstart.yaml');
// a kubeconfig that cannot be used: a test that reached the API server would fail on it, not pass
const NO_CLUSTER = { KUBECONFIG: '/nonexistent/kubeconfig', NODE_NAME: undefined };

test('docs/cli.md is the command table as it is (node scripts/cli-docs.mjs writes it)', () => {
  const file = path.join(ROOT, 'docs/cli.md');
  assert.equal(fs.readFileSync(file, 'utf8'), cliReference(), 'docs/cli.md differs from src/cli/commands.ts: run node scripts/cli-docs.mjs');
});

test('docs/cli.md describes every command and every option', () => {
  const text = cliReference();
  for (const cmd of ['run', 'replay', 'validate', 'gadgets', 'deploy', 'undeploy', 'agent', 'help', 'version']) assert.match(text, new RegExp(`^### gadget-run ${cmd}$`, 'm'), cmd);
  for (const flag of ['--cluster', '-n`, `--namespace', '--apply', '--wait', '--timeout', '--work-dir', '-o`, `--output', '-O`, `--out']) assert.ok(text.includes(flag), flag);
  // an option no command takes is dead code in the table
  const unused = [...text.matchAll(/^\| (`[^|]+`) \|\s*\|$/gm)].map((m) => m[1]);
  assert.deepEqual(unused, [], 'options that no command takes');
  const shorts = [...text.slice(text.indexOf('## Every option')).matchAll(/^\| `(-[A-Za-z])`/gm)].map((m) => m[1]);
  assert.equal(new Set(shorts).size, shorts.length, `a short flag names two options: ${shorts.join(' ')}`);
});

test('run --cluster: -o is the output format there too, and the folder is --out', async () => {
  const out = tempDir();
  const r = await runCli(['run', RECIPE, '--cluster', '-o', path.join(out, 'x')], { env: NO_CLUSTER });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /-o is the output format \(json or columns\).*the output folder is --out DIR \(-O DIR\)/);
  assert.equal(fs.existsSync(path.join(out, 'x')), false, '-o made a folder');
  const json = await runCli(['run', RECIPE, '--cluster', '-o', 'json'], { env: NO_CLUSTER });
  assert.equal(json.code, 2, json.stderr);
  assert.match(json.stderr, /-o\/--output does not go with --cluster: the events come back when the nodes are done/);
});

test('run --cluster: a folder it cannot write is refused before the cluster is asked anything', async () => {
  const r = await runCli(['run', RECIPE, '--cluster', '--out', '/proc/gadget-run-cannot'], { env: NO_CLUSTER });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--out \/proc\/gadget-run-cannot: cannot write there.* choose a folder you can write with --out DIR/);
});

test('run --cluster refuses the options a cluster run cannot honour, naming each and why', async () => {
  const r = await runCli(['run', RECIPE, '--cluster', '--set', 'a=b', '--limit-ring', '1MiB', '--user', 'nobody'], { env: NO_CLUSTER });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--set does not go with --cluster: the nodes read the recipe file as written/);
  assert.match(r.stderr, /--limit-ring does not go with --cluster/);
  assert.match(r.stderr, /--user does not go with --cluster/);
  assert.match(r.stderr, /gadget-run run <recipe\.yaml> --cluster \[--node NODE\]/, 'the usage follows');
  const argv = await runCli(['run', RECIPE, '--cluster', '--', 'true'], { env: NO_CLUSTER });
  assert.equal(argv.code, 2, argv.stderr);
  assert.match(argv.stderr, /-- CMD does not go with --cluster/);
  const stdin = await runCli(['run', '-', '--cluster'], { env: NO_CLUSTER });
  assert.equal(stdin.code, 2, stdin.stderr);
  assert.match(stdin.stderr, /run --cluster takes a recipe file, not - \(stdin\)/);
  const label = await runCli(['run', RECIPE, '--cluster', '-l', 'app'], { env: NO_CLUSTER });
  assert.equal(label.code, 2, label.stderr);
  assert.match(label.stderr, /-l "app": a label selector is KEY=VALUE/);
});

test('a local run refuses the cluster-only options, saying they need --cluster', async () => {
  const r = await runCli(['run', RECIPE, '-n', 'default', '--node', 'n1'], { env: NO_CLUSTER });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--node, -n\/--namespace: only with --cluster/);
});

test('deploy prints the manifests with its options; a bad value exits 2 naming the option', async () => {
  const r = await runCli(['deploy', '--image', 'example/gr:1', '--pull-policy', 'Never', '--caps', 'bpf,CAP_PERFMON'], { env: NO_CLUSTER });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /image: example\/gr:1/);
  assert.match(r.stdout, /imagePullPolicy: Never/);
  assert.match(r.stdout, /- BPF\n\s+- PERFMON\n/);
  for (const [args, message] of [
    [['deploy', '--pull-policy', 'Sometimes'], /--pull-policy: one of Always, IfNotPresent, Never/],
    [['deploy', '--caps', 'BPF,rm -rf'], /--caps: not capability names: RM -RF/],
    [['deploy', 'now'], /deploy takes no "now": only options/],
    [['deploy', '-o', 'yaml'], /Unknown option '-o'/],
    [['undeploy', '--timeout', '5s'], /--timeout is how long --wait waits: give --wait too/],
    [['undeploy', '--wait', '--timeout', 'soon'], /--timeout: /],
  ] as const) {
    const bad = await runCli([...args], { env: NO_CLUSTER });
    assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, message, args.join(' '));
  }
});

test('agent: its options are checked like any command (an unknown one was an uncaught exception)', async () => {
  const bogus = await runCli(['agent', '--bogus'], { env: NO_CLUSTER });
  assert.equal(bogus.code, 2, bogus.stderr);
  assert.match(bogus.stderr, /Unknown option '--bogus'[^]*usage:\n  gadget-run agent /);
  assert.doesNotMatch(bogus.stderr, /at .*\.(ts|mjs):\d+/, 'no stack trace');
  const two = await runCli(['agent', '--node', 'a', '--node', 'b'], { env: NO_CLUSTER });
  assert.equal(two.code, 2, two.stderr);
  assert.match(two.stderr, /an agent serves one node/);
  const none = await runCli(['agent'], { env: NO_CLUSTER });
  assert.equal(none.code, 2, none.stderr);
  assert.match(none.stderr, /no node name: set NODE_NAME .* or --node/);
});

test('help lists the cluster commands from the table, and each has its own help', async () => {
  const r = await runCli(['help']);
  assert.equal(r.code, 0, r.stderr);
  const cluster = r.stdout.slice(r.stdout.indexOf('cluster commands'));
  for (const row of [/^ {2}run <recipe\.yaml> --cluster +run it on every node/m, /^ {2}deploy +print the Kubernetes manifests/m, /^ {2}undeploy +remove everything/m, /^ {2}agent +the per-node agent/m]) assert.match(cluster, row);
  for (const cmd of ['deploy', 'undeploy', 'agent']) {
    const h = await runCli([cmd, '--help']);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, new RegExp(`^usage:\\n  gadget-run ${cmd}`), cmd);
    assert.match(h.stdout, /^options:$/m, cmd);
  }
});
