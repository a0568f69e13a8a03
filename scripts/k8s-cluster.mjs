#!/usr/bin/env node
// The test cluster: a real single-node Kubernetes 1.20 built from Debian's
// sources and run on loopback only (see docs/kubernetes.md). Subcommands:
//   build   build kube-* + kubectl + pause once, cached in $GADGET_RUN_K8S_CACHE
//           (default /var/cache/gadget-run/k8s-<version>), reused by later runs
//   up      start etcd, apiserver, controller-manager, scheduler, containerd,
//           kubelet; wait for the node to be Ready; import the images
//   down    stop what `up` started (by the pids it recorded) and clean the state
//   image   build the gadget-run image with podman and import it into containerd
//   env     print the paths a test needs (kubeconfig, kubectl) as JSON
// Tests use it through test/k8s/cluster.ts, which calls the same functions.
import { $, fs, path, sleep } from 'zx';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { UNBUNDLED_MODULES } from './unbundled.mjs';
import { lockFile } from './lock.mjs';

$.verbose = false;
$.quiet = true;
const root = fileURLToPath(new URL('..', import.meta.url));

export const K8S_VERSION = '1.20.2';
export const cacheDir = process.env.GADGET_RUN_K8S_CACHE ?? `/var/cache/gadget-run/k8s-${K8S_VERSION}`;
export const binDir = `${cacheDir}/bin`;
export const kubectlPath = `${binDir}/kubectl`;
// Cluster state lives outside the checkout too, so two worktrees share one cluster.
export const stateDir = process.env.GADGET_RUN_K8S_STATE ?? '/run/gadget-run-k8s';
export const kubeconfigPath = `${stateDir}/admin.kubeconfig`;
export const apiAddress = '127.1.0.1';
export const apiServer = `https://${apiAddress}:443`;
// the kubelet serves here and the Node's InternalIP says so: the API server reaches it for logs, exec
// and port-forward by this address alone (no hostname, no DNS lookup; see upUnlocked)
export const nodeAddress = '127.1.0.2';
export const nodeName = 'gadget-node-0';
export const imageName = 'localhost/gadget-run:test';
const etcdPort = 23790;
const ADMIN_TOKEN_FILE = `${stateDir}/tokens.csv`;

const KUBE_BINARIES = ['kube-apiserver', 'kubelet', 'kube-controller-manager', 'kube-scheduler', 'kubectl'];
// golang-github-modern-go-reflect2-dev: reflect2 1.0.2, see build()
const APT_PACKAGES = ['golang-github-modern-go-reflect2-dev', 'golang-go', 'rsync', 'dpkg-dev', 'etcd-server', 'containerd', 'containernetworking-plugins',
  'podman', 'runc', 'openssl', 'gcc', 'libc6-dev'];

const log = (...a) => console.error('k8s-cluster:', ...a);

/** Bumped when the way the binaries are built changes, so a cache from an older recipe is rebuilt. */
const BUILD_RECIPE = '2: vendored reflect2 1.0.2';

export function built() {
  const recipe = fs.existsSync(`${binDir}/.recipe`) && fs.readFileSync(`${binDir}/.recipe`, 'utf8');
  return recipe === BUILD_RECIPE && KUBE_BINARIES.every((b) => fs.existsSync(`${binDir}/${b}`)) && fs.existsSync(`${binDir}/pause`);
}

async function aptEnsure() {
  const missing = [];
  for (const p of APT_PACKAGES) {
    const r = await $`dpkg-query -W ${'-f=${Status}'} ${p}`.nothrow();
    if (!r.stdout.includes('install ok installed')) missing.push(p);
  }
  if (!missing.length) return;
  log('installing', missing.join(' '));
  await $`apt-get update -qq`;
  await $({ env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })`apt-get install -y -qq ${missing}`;
}

async function debSrcEnsure() {
  // apt-get source needs a deb-src twin of the deb entries
  const src = '/etc/apt/sources.list.d/debian-src.sources';
  if (fs.existsSync(src)) return;
  const deb = await fs.readFile('/etc/apt/sources.list.d/debian.sources', 'utf8');
  await fs.writeFile(src, deb.replace(/^Types: deb$/gm, 'Types: deb-src'));
  await $`apt-get update -qq`;
}

/** Builds the binaries once; later calls return at once. */
const LOCK = process.env.GADGET_RUN_K8S_LOCK ?? '/run/gadget-run-k8s.lock';

/** One build or start at a time on this machine: two would overwrite each other's binaries, certificates and state. */
async function locked(what, fn) {
  const release = await lockFile(LOCK, what, log);
  try {
    return await fn();
  } finally {
    release();
  }
}

export async function build() {
  if (built()) return;
  return locked('build', buildUnlocked);
}

async function buildUnlocked() {
  // another process may have built it while this one waited
  if (built()) return;
  const t0 = Date.now();
  await aptEnsure();
  await debSrcEnsure();
  const work = `${cacheDir}/build`;
  await fs.remove(work);
  await fs.mkdirp(work);
  log(`building Kubernetes ${K8S_VERSION} from Debian's sources in ${work} (minutes, once)`);
  await $({ cwd: work })`apt-get source --download-only kubernetes`;
  const dsc = (await fs.readdir(work)).find((f) => f.endsWith('.dsc'));
  await $({ cwd: work })`dpkg-source --no-check -x ${dsc} tree`;
  const tree = `${work}/tree`;
  // Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, whose unsafe map iteration faults under
  // Go >= 1.18 (the apiserver dies with SIGSEGV in aeshashbody the first time it encodes a
  // custom resource's metadata map). 1.0.2 fixed it; Debian packages 1.0.2: use it in the tree.
  const reflect2 = `${tree}/vendor/github.com/modern-go/reflect2`;
  await fs.remove(reflect2);
  await fs.copy('/usr/share/gocode/src/github.com/modern-go/reflect2', reflect2, { dereference: true });
  await fs.mkdirp(`${tree}/.go/src/k8s.io`);
  await fs.symlink(tree, `${tree}/.go/src/k8s.io/kubernetes`);
  const env = { ...process.env, GOPATH: `${tree}/.go`, CGO_ENABLED: '0', KUBE_GIT_VERSION: `v${K8S_VERSION}` };
  const what = KUBE_BINARIES.map((b) => `cmd/${b}`).join(' ');
  // A failed first make leaves an empty _output/bin/prerelease-lifecycle-gen: retry once from clean.
  let r = await $({ cwd: tree, env })`make WHAT=${what}`.nothrow();
  if (r.exitCode !== 0) {
    log('make failed once, retrying from a clean _output:', r.stderr.slice(-2000));
    await fs.remove(`${tree}/_output`);
    r = await $({ cwd: tree, env })`make WHAT=${what}`.nothrow();
    if (r.exitCode !== 0) throw new Error(`k8s-cluster: make failed in ${tree}:\n${r.stderr.slice(-4000)}`);
  }
  await fs.mkdirp(binDir);
  for (const b of KUBE_BINARIES) await fs.copy(`${tree}/_output/bin/${b}`, `${binDir}/${b}`);
  // The sandbox image's only program: kubernetes' own pause, static so the image is FROM scratch.
  await $`gcc -Os -static -o ${binDir}/pause ${tree}/build/pause/linux/pause.c`;
  await fs.writeFile(`${binDir}/.recipe`, BUILD_RECIPE);
  await fs.remove(work);
  log(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s -> ${binDir}`);
}


// ---------------------------------------------------------------- the cluster

const dataDir = process.env.GADGET_RUN_K8S_DATA ?? '/var/lib/gadget-run-k8s';
const containerdSock = `${stateDir}/containerd.sock`;
const pidsFile = `${stateDir}/pids.json`;
const ADMIN_TOKEN = 'gadget-run-test-admin';
const sh = (cmd) => $({ nothrow: true })`bash -c ${cmd}`;

function readPids() {
  try {
    return JSON.parse(fs.readFileSync(pidsFile, 'utf8'));
  } catch {
    return {};
  }
}
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function startDaemon(name, cmd, args, env = {}) {
  const out = fs.openSync(`${stateDir}/logs/${name}.log`, 'a');
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin`, ...env },
  });
  child.unref();
  const pids = readPids();
  pids[name] = child.pid;
  fs.writeFileSync(pidsFile, JSON.stringify(pids));
  return child.pid;
}

function kubeconfig(token) {
  return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "${apiServer}", certificate-authority: "${stateDir}/pki/apiserver.crt"}
users:
- name: u
  user: {token: "${token}"}
contexts:
- name: test
  context: {cluster: test, user: u}
current-context: test
`;
}

/** Writes a kubeconfig that authenticates with a bearer token (an agent's ServiceAccount token). */
export function writeTokenKubeconfig(file, token) {
  fs.writeFileSync(file, kubeconfig(token), { mode: 0o600 });
  return file;
}

async function waitFor(what, check, timeoutMs = 120_000) {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`k8s-cluster: ${what} not ready after ${timeoutMs / 1000} s; logs in ${stateDir}/logs`);
    await sleep(300);
  }
}

export async function kubectl(...args) {
  return $({ nothrow: true, env: { ...process.env, KUBECONFIG: kubeconfigPath } })`${kubectlPath} ${args}`;
}

async function apiReady() {
  const r = await kubectl('get', '--raw', '/readyz');
  return r.exitCode === 0 && r.stdout.trim() === 'ok';
}

/** Whether a cluster started by `up` is running. */
export async function running() {
  const pids = readPids();
  // every daemon: a cluster whose controller-manager died (no GC, no namespace deletion) is not running
  if (!(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'containerd'].every((n) => pids[n] && alive(pids[n])) && (await apiReady()))) return false;
  // one started by an older `up` (its kubelet on another address) is restarted
  const ip = await kubectl('get', 'node', nodeName, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}');
  return ip.stdout.trim() === nodeAddress;
}

/**
 * Starts the cluster unless it runs already; resolves when the node is Ready
 * and the images are in containerd. Returns whether it started it (callers that
 * did stop it again).
 */
export async function up() {
  if (await running()) return false;
  await build();
  return locked('start', async () => (await running() ? false : upUnlocked()));
}

async function upUnlocked() {
  await down();
  const t0 = Date.now();
  for (const d of ['logs', 'pki', 'cni', 'etcd']) await fs.mkdirp(`${stateDir}/${d}`);
  await fs.mkdirp(dataDir);
  // ServiceAccount tokens: the apiserver verifies with the public key, the controller-manager signs with the private one
  await $`openssl genrsa -out ${stateDir}/pki/sa.key 2048`;
  await $`openssl rsa -in ${stateDir}/pki/sa.key -pubout -out ${stateDir}/pki/sa.pub`;
  await fs.writeFile(ADMIN_TOKEN_FILE, `${ADMIN_TOKEN},admin,admin,"system:masters"\n`, { mode: 0o600 });
  await fs.writeFile(kubeconfigPath, kubeconfig(ADMIN_TOKEN), { mode: 0o600 });

  startDaemon('etcd', '/usr/bin/etcd', [
    '--data-dir', `${stateDir}/etcd`, '--name', 'default',
    '--listen-client-urls', `http://127.0.0.1:${etcdPort}`, '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPort + 10}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPort + 10}`,
    '--initial-cluster', `default=http://127.0.0.1:${etcdPort + 10}`, '--listen-metrics-urls', `http://127.0.0.1:${etcdPort + 20}`,
  ]);
  startDaemon('kube-apiserver', `${binDir}/kube-apiserver`, [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    // loopback only: the kubernetes Service's ClusterIP (127.1.0.1) is the API server itself
    `--bind-address=${apiAddress}`, `--advertise-address=${apiAddress}`, '--secure-port=443',
    '--service-cluster-ip-range=127.1.0.0/16',
    `--cert-dir=${stateDir}/pki`, `--token-auth-file=${ADMIN_TOKEN_FILE}`,
    '--authorization-mode=RBAC', '--allow-privileged=true',
    '--service-account-issuer=https://kubernetes.default.svc', `--service-account-key-file=${stateDir}/pki/sa.pub`,
    `--service-account-signing-key-file=${stateDir}/pki/sa.key`, '--api-audiences=https://kubernetes.default.svc',
    '--insecure-port=0', '--profiling=false',
    // logs, exec, port-forward: to the kubelet by the Node's InternalIP only (Hostname would be a DNS lookup)
    '--kubelet-preferred-address-types=InternalIP',
  ]);
  await waitFor('kube-apiserver', apiReady);
  startDaemon('kube-controller-manager', `${binDir}/kube-controller-manager`, [
    `--kubeconfig=${kubeconfigPath}`, `--service-account-private-key-file=${stateDir}/pki/sa.key`,
    `--root-ca-file=${stateDir}/pki/apiserver.crt`, '--use-service-account-credentials',
    // -nodelifecycle: its NoExecute tainting pass dereferences a node's Ready condition without a check
    // (1.20 node_lifecycle_controller.go:688) and kills the whole controller-manager on the first
    // simulated Node (no kubelet, no conditions) it queues: that happens once a zone holds more than
    // 50 nodes (the scale test). With it gone went the GC and the namespace controller: undeploy hung.
    // One real kubelet needs no node health monitoring or taint-based eviction.
    '--controllers=*,-nodeipam,-csrsigning,-nodelifecycle', '--leader-elect=false', '--port=0', '--secure-port=0',
  ]);
  startDaemon('kube-scheduler', `${binDir}/kube-scheduler`, [`--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', '--port=0', '--secure-port=0']);

  // containerd of its own (socket, state) beside any on the machine; its images persist in dataDir
  await fs.writeFile(`${stateDir}/cni/10-lo.conflist`, JSON.stringify({ cniVersion: '0.4.0', name: 'lo', plugins: [{ type: 'loopback' }] }));
  await fs.writeFile(`${stateDir}/containerd.toml`, `version = 2
root = "${dataDir}/containerd"
state = "${stateDir}/containerd"
[grpc]
  address = "${containerdSock}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  # root here lacks CAP_SYS_RESOURCE: without this every sandbox fails ("can't get final child's PID from pipe")
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${stateDir}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`);
  startDaemon('containerd', '/usr/bin/containerd', ['--config', `${stateDir}/containerd.toml`]);
  await waitFor('containerd', async () => (await $({ nothrow: true })`ctr --address ${containerdSock} version`).exitCode === 0);
  await importImages();

  await fs.writeFile(`${stateDir}/kubelet.yaml`, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
authentication: {webhook: {enabled: false}, anonymous: {enabled: true}}
authorization: {mode: AlwaysAllow}
address: ${nodeAddress}
port: 10350
readOnlyPort: 0
healthzPort: 10348
healthzBindAddress: 127.0.0.1
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
`);
  startDaemon('kubelet', `${binDir}/kubelet`, [
    `--kubeconfig=${kubeconfigPath}`, `--config=${stateDir}/kubelet.yaml`,
    '--container-runtime=remote', `--container-runtime-endpoint=unix://${containerdSock}`,
    `--hostname-override=${nodeName}`, `--root-dir=${dataDir}/kubelet`, `--cert-dir=${stateDir}/pki/kubelet`,
    // A loopback node IP is refused by the kubelet's own check (kubelet_node_status.go validateNodeIP),
    // which then leaves the Node's addresses alone: without --node-ip it would look the node's name up
    // (a DNS query leaving the machine) and take an interface's address. The addresses are set below.
    `--node-ip=${nodeAddress}`,
  ]);
  await waitFor('the Node object', async () => (await kubectl('get', 'node', nodeName)).exitCode === 0);
  await setNodeAddress();
  await waitFor('the node', async () => {
    const r = await kubectl('get', 'node', nodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}');
    return r.stdout.trim() === 'True';
  });
  await waitFor('the default ServiceAccount', async () => (await kubectl('get', 'serviceaccount', 'default')).exitCode === 0);
  log(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s (KUBECONFIG=${kubeconfigPath})`);
  return true;
}

/**
 * The Node's addresses: InternalIP ${nodeAddress} (where the kubelet serves; hostNetwork pods' IP) and
 * its Hostname. Status is a subresource kubectl 1.20 cannot patch: an HTTPS request as the admin.
 */
async function setNodeAddress() {
  const https = await import('node:https');
  const body = JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: nodeAddress }, { type: 'Hostname', address: nodeName }] } });
  await new Promise((resolve, reject) => {
    const req = https.request(`${apiServer}/api/v1/nodes/${nodeName}/status`, {
      method: 'PATCH',
      ca: fs.readFileSync(`${stateDir}/pki/apiserver.crt`),
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/strategic-merge-patch+json' },
    }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`k8s-cluster: setting the node's address: ${res.statusCode} ${text.slice(0, 300)}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Stops what `up` started, by the pids it recorded, and removes the cluster's state (not the cached binaries or images). */
export async function down() {
  const pids = readPids();
  // the kubelet first so it stops restarting pods, then the control plane, containerd last
  for (const name of ['kubelet', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd']) {
    if (pids[name] && alive(pids[name])) process.kill(pids[name], 'SIGTERM');
  }
  if (pids.containerd && alive(pids.containerd)) {
    // containers the kubelet started: stop them through the runtime, then containerd itself
    await sh(`for c in $(ctr --address ${containerdSock} -n k8s.io tasks ls -q 2>/dev/null); do ctr --address ${containerdSock} -n k8s.io tasks kill -s KILL $c; done`);
    await sleep(500);
    process.kill(pids.containerd, 'SIGTERM');
  }
  const t0 = Date.now();
  while (Object.values(pids).some((p) => alive(p)) && Date.now() - t0 < 15_000) await sleep(200);
  for (const p of Object.values(pids)) if (alive(p)) process.kill(p, 'SIGKILL');
  // shims outlive containerd by design; they are ours when they serve our socket's namespace
  await sh(`for p in $(pgrep -f "containerd-shim-runc-v2 .*-address ${containerdSock}"); do kill -9 $p; done`);
  await sh(`grep ' ${dataDir}/kubelet' /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l`);
  await sh(`grep ' ${stateDir}/containerd' /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l`);
  await fs.remove(stateDir);
  await fs.remove(`${dataDir}/kubelet`);
}

async function ctr(...args) {
  return $`ctr --address ${containerdSock} -n k8s.io ${args}`;
}

async function hasImage(ref) {
  const r = await ctr('images', 'ls', '-q');
  return r.stdout.split('\n').includes(ref);
}

/** podman build (FROM scratch + a folder) → OCI archive → containerd's k8s.io namespace. */
async function buildImage(ref, contextDir, entrypoint) {
  // the CRI refuses an image without an entrypoint, even when the pod gives the command
  await fs.writeFile(`${contextDir}/Containerfile`, `FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ${JSON.stringify(entrypoint)}\n`);
  await $`podman build --runtime /usr/sbin/runc -q -t ${ref} -f ${contextDir}/Containerfile ${contextDir}`;
  const archive = `${contextDir}/image.tar`;
  await fs.remove(archive);
  await $`podman save --format oci-archive -o ${archive} ${ref}`;
  await ctr('images', 'import', '--base-name', ref.replace(/:[^:/]*$/, ''), archive);
  if (!(await hasImage(ref))) {
    // older ctr names an OCI archive's image by its annotation only: tag it by hand
    const listed = (await ctr('images', 'ls', '-q')).stdout.split('\n').filter((l) => l.startsWith(ref.split(':')[0]));
    throw new Error(`k8s-cluster: ${ref} not in containerd after import (found: ${listed.join(', ')})`);
  }
}

// what the image holds of the checkout; koffi 3's native module is in its @koromix/koffi-<platform> package
// the bundle is split (build/gadget-run.mjs loads chunk-*.mjs lazily): every .mjs of build/ goes in
const bundleFiles = () => fs.readdirSync(`${root}build`).filter((f) => f.endsWith('.mjs')).sort().map((f) => `build/${f}`);
const IMAGE_FILES = ['package.json', 'build/bpf', ...UNBUNDLED_MODULES.map((m) => `node_modules/${m}`)];

/** The files of the gadget-run image: node, the libraries it and libbpf load, the bundle, the BPF objects. */
async function gadgetRunRootfs(dir) {
  const rootfs = `${dir}/rootfs`;
  await fs.remove(rootfs);
  const node = fs.realpathSync('/usr/bin/node');
  const libs = new Set();
  for (const bin of [node, '/usr/lib/x86_64-linux-gnu/libbpf.so.1']) {
    for (const m of (await $`ldd ${bin}`).stdout.matchAll(/(\/\S+\.so[.\d]*)/g)) libs.add(m[1]);
  }
  libs.add('/usr/lib/x86_64-linux-gnu/libbpf.so.1');
  for (const lib of libs) await fs.copy(fs.realpathSync(lib), `${rootfs}${lib}`, { dereference: true });
  await fs.copy(node, `${rootfs}/usr/bin/node`);
  for (const f of [...IMAGE_FILES, ...bundleFiles()]) {
    await fs.copy(`${root}${f}`, `${rootfs}/app/${f}`, { dereference: true });
  }
  await fs.mkdirp(`${rootfs}/tmp`);
}

/** The image reference for the current bundle and objects (content hash, so a rebuild changes the tag). */
export async function gadgetRunImage() {
  const h = createHash('sha256');
  // the layout is part of the image too: a change in what is copied changes the tag
  h.update(JSON.stringify(IMAGE_FILES)).update(gadgetRunRootfs.toString()).update(buildImage.toString());
  for (const f of [...bundleFiles(), ...fs.readdirSync(`${root}build/bpf`).filter((f) => f.endsWith('.o')).map((f) => `build/bpf/${f}`)]) {
    h.update(f).update(fs.readFileSync(`${root}${f}`));
  }
  return `${imageName.split(':')[0]}:${h.digest('hex').slice(0, 12)}`;
}

export async function importImages() {
  const work = `${dataDir}/images`;
  await fs.mkdirp(work);
  if (!(await hasImage('registry.k8s.io/pause:3.6'))) {
    const dir = `${work}/pause`;
    await fs.mkdirp(`${dir}/rootfs`);
    await fs.copy(`${binDir}/pause`, `${dir}/rootfs/pause`);
    await buildImage('registry.k8s.io/pause:3.6', dir, ['/pause']);
  }
  return image();
}

/** Builds and imports the gadget-run image when containerd lacks this build of it; returns its reference. */
export async function image() {
  const ref = await gadgetRunImage();
  if (await hasImage(ref)) return ref;
  const dir = `${dataDir}/images/gadget-run`;
  await fs.mkdirp(dir);
  await gadgetRunRootfs(dir);
  await buildImage(ref, dir, ['/usr/bin/node', '/app/build/gadget-run.mjs']);
  log(`imported ${ref}`);
  return ref;
}

export function env() {
  return { kubeconfig: kubeconfigPath, kubectl: kubectlPath, apiServer, nodeName, nodeAddress, stateDir, cacheDir };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const cmd = process.argv[2];
  const fns = { build, up, down, image, env: async () => console.log(JSON.stringify(env())) };
  if (!fns[cmd]) {
    console.error(`usage: scripts/k8s-cluster.mjs ${Object.keys(fns).join('|')}`);
    process.exit(2);
  }
  await fns[cmd]();
}
