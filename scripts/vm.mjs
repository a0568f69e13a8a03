#!/usr/bin/env node
// Other kernels under qemu: Debian's kernel packages booted with the host's root
// shared read-only (see docs/kernels.md).
// Nothing is installed on the host but the tools (qemu, kmod, cpio, ...); kernels
// live in $GADGET_RUN_VM_CACHE (default /var/cache/gadget-run/kernels).
//   fetch KERNEL            apt-get download + dpkg-deb -x + depmod -b; idempotent
//   initrd KERNEL           the busybox initramfs with the kernel's virtio/9p/overlay modules
//   run [OPTS] KERNEL -- CMD…   boot, run CMD in the host root at this cwd, exit with its code
//       --env K=V | --env K   (K alone copies the host's value)   --timeout 10m
//       --stall 3m            kill a guest whose heartbeat stopped that long (a hung kernel);
//                             one whose console shows a soft lockup, panic, oops or RCU stall is
//                             killed at once; either way the reason ends the error
//       --share DIR           a host folder the guest may write, at the same path
//       --memory 3G --smp 2
//       --boot-log FILE       keep the kernel's console there
//       the job also finds the host root as it is, read-only, at /run/vm-host
//   kernels                 the matrix's kernel names and what they resolve to
// KERNEL is a matrix name (6.1, 6.12), a Debian package (linux-image-…) or a release.
// test/vm/matrix.test.ts uses the same functions.
import { $, fs, path } from 'zx';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import os from 'node:os';
import { lock } from './lock.mjs';

$.verbose = false;
$.quiet = true;

export const cacheDir = process.env.GADGET_RUN_VM_CACHE ?? '/var/cache/gadget-run/kernels';

/** The matrix: a short name per kernel, and the Debian package that names its newest build. */
export const KERNELS = {
  '6.1': 'linux-image-amd64',
  '6.12': 'linux-image-6.12-amd64',
};

// xz-utils and zstd unpack the kernels (6.1's vmlinuz is xz, 6.12's zstd) and 6.12's modules
const APT_PACKAGES = ['qemu-system-x86', 'busybox-static', 'kmod', 'cpio', 'xz-utils', 'zstd', 'dpkg'];

/** The guest needs these to mount the host root and talk back; modules.dep adds what they need. */
const GUEST_MODULES = ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p', 'overlay'];

/** Bumped when the layout of a fetched kernel changes, so an older cache entry is redone. */
const FETCH_RECIPE = '1';

const log = (...a) => console.error('vm:', ...a);

// guests started together fetch together: one apt-get install at a time (dpkg's own lock)
let ensured = null;
export function aptEnsure() {
  ensured ??= ensureApt().catch((err) => {
    ensured = null;
    throw err;
  });
  return ensured;
}

async function ensureApt() {
  // one query for all: under TCG's load every process start counts
  const r = await $`dpkg-query -W ${'-f=${Package} ${Status}\n'} ${APT_PACKAGES}`.nothrow();
  const installed = new Set(r.stdout.split('\n').filter((l) => l.endsWith(' install ok installed')).map((l) => l.split(' ')[0]));
  const missing = APT_PACKAGES.filter((p) => !installed.has(p));
  if (!missing.length) return;
  log('installing', missing.join(' '));
  await $`apt-get update -qq`;
  await $({ env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })`apt-get install -y -qq --no-install-recommends ${missing}`;
}

/** The linux-image package a name stands for: meta packages are followed to the one that ships a kernel. */
async function resolvePackage(name) {
  let pkg = KERNELS[name] ?? (name.startsWith('linux-image-') ? name : `linux-image-${name}`);
  for (let hops = 0; hops < 5; hops++) {
    const r = await $`apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances ${pkg}`.nothrow();
    if (r.exitCode !== 0) {
      throw new Error(`vm: no Debian package ${pkg} (for kernel "${name}"): known names are ${Object.keys(KERNELS).join(', ')}, ` +
        `or a linux-image-… package from \`apt-cache search linux-image\` (run apt-get update if the lists are old)`);
    }
    const next = /^\s+Depends: (linux-image-\S+)$/m.exec(r.stdout)?.[1];
    if (!next) return pkg;
    pkg = next;
  }
  throw new Error(`vm: ${name}: more than 5 meta packages deep, not following further`);
}

/** What a fetched kernel is made of, all under cacheDir/<release>. */
function layout(release) {
  const dir = path.join(cacheDir, release);
  const root = path.join(dir, 'root');
  return {
    release, dir, root,
    vmlinuz: path.join(root, 'boot', `vmlinuz-${release}`),
    vmlinux: path.join(dir, 'vmlinux'),
    modules: path.join(root, 'lib', 'modules', release),
    marker: path.join(dir, '.fetched'),
  };
}

function fetched(release) {
  const l = layout(release);
  try {
    const info = JSON.parse(fs.readFileSync(l.marker, 'utf8'));
    return info.recipe === FETCH_RECIPE ? { ...l, ...info } : null;
  } catch {
    return null;
  }
}

// apt-cache takes seconds per call on a busy machine: what a name resolved to is kept
// until apt's lists change (apt-get update), which is when it could resolve to a newer build
const aliasFile = (name) => path.join(cacheDir, `${name.replace(/[^A-Za-z0-9.+-]/g, '_')}.resolved`);
const APT_LISTS = '/var/lib/apt/lists';

function resolvedBefore(name) {
  try {
    const st = fs.statSync(aliasFile(name));
    if (st.mtimeMs < fs.statSync(APT_LISTS).mtimeMs) return null;
    return fetched(fs.readFileSync(aliasFile(name), 'utf8').trim());
  } catch {
    return null;
  }
}

function remember(name, release) {
  if (name !== release) fs.writeFileSync(aliasFile(name), `${release}\n`);
}

/**
 * Downloads and unpacks a kernel once; later calls return the cached one. A name that
 * apt cannot resolve (no lists, no network) still finds a release fetched before.
 */
export async function fetch(name) {
  const direct = fetched(name) ?? resolvedBefore(name);
  if (direct) return direct;
  await aptEnsure();
  const pkg = await resolvePackage(name);
  const release = pkg.replace(/^linux-image-/, '').replace(/-unsigned$/, '');
  const have = fetched(release);
  if (have) {
    remember(name, release);
    return have;
  }

  const t0 = Date.now();
  const l = layout(release);
  const tmp = `${l.dir}.partial-${process.pid}`;
  await fs.remove(tmp);
  await fs.mkdirp(tmp);
  try {
    await $({ cwd: tmp })`apt-get download ${pkg}`;
    const [deb] = (await fs.readdir(tmp)).filter((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`vm: apt-get download ${pkg} left no .deb in ${tmp}`);
    const version = (await $`dpkg-deb -f ${path.join(tmp, deb)} Version`).stdout.trim();
    await $`dpkg-deb -x ${path.join(tmp, deb)} ${path.join(tmp, 'root')}`;
    await fs.remove(path.join(tmp, deb));
    // the package leaves modules.dep to the postinst, which we do not run
    await $`depmod -b ${path.join(tmp, 'root')} ${release}`;
    const vmlinuz = path.join(tmp, 'root', 'boot', `vmlinuz-${release}`);
    const uncompressed = await extractVmlinux(vmlinuz, path.join(tmp, 'vmlinux')).catch((err) => {
      log(`${release}: no uncompressed kernel (${err.message}); booting vmlinuz, slower under TCG`);
      return false;
    });
    // fetchedMs: what a cold fetch took (docs/kernels.md's figures)
    const info = { recipe: FETCH_RECIPE, package: pkg, version, uncompressed: Boolean(uncompressed), fetchedMs: Date.now() - t0, fetchedAt: new Date().toISOString() };
    await fs.writeFile(path.join(tmp, '.fetched'), JSON.stringify(info));
    await fs.remove(l.dir);
    await fs.rename(tmp, l.dir);
    log(`fetched ${pkg} ${version} into ${l.dir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    remember(name, release);
  } catch (err) {
    await fs.remove(tmp);
    throw err;
  }
  return fetched(release);
}

/**
 * The ELF kernel inside a bzImage, for qemu's PVH entry (6.1 reaches init in 2.8 s
 * instead of 8.5 s under TCG: the decompressor is slow when emulated). The setup
 * header says where the compressed payload is (boot protocol 2.08+).
 */
async function extractVmlinux(vmlinuz, out) {
  const img = await fs.readFile(vmlinuz);
  if (img.readUInt32LE(0x202) !== 0x53726448) throw new Error(`${vmlinuz} is not a bzImage (no HdrS)`);
  const setupSects = img[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + img.readUInt32LE(0x248);
  const payload = img.subarray(start, start + img.readUInt32LE(0x24c));
  const tool = payload[0] === 0xfd && payload.subarray(1, 6).toString('latin1') === '7zXZ\0' ? 'xz'
    : payload.readUInt32LE(0) === 0xfd2fb528 ? 'zstd'
    : payload[0] === 0x1f && payload[1] === 0x8b ? 'gzip' : null;
  if (!tool) throw new Error(`unknown compression (magic ${payload.subarray(0, 4).toString('hex')})`);
  // xz and zstd both complain about the padding after the stream; what they wrote is whole
  // zx hands output over as text; a kernel needs its bytes
  const r = spawnSync(tool, ['-dc'], { input: payload, maxBuffer: 1 << 30 });
  const elf = r.stdout;
  if (!elf || elf.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new Error(`${tool} -dc gave no ELF: ${r.error?.message ?? r.stderr}`);
  await fs.writeFile(out, elf);
  return out;
}

/** Modules to load, dependencies first, from the tree depmod made. */
export function moduleOrder(modulesDir, roots = GUEST_MODULES) {
  const dep = new Map();
  for (const line of fs.readFileSync(path.join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m) dep.set(modName(m[1]), { file: m[1], deps: m[2].split(/\s+/).filter(Boolean) });
  }
  const builtin = new Set(fs.readFileSync(path.join(modulesDir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(modName));
  const order = [];
  const visit = (name) => {
    if (builtin.has(name) || order.some((o) => o.name === name)) return;
    const d = dep.get(name);
    if (!d) throw new Error(`vm: module ${name} is neither built in nor in ${modulesDir}/modules.dep`);
    for (const f of d.deps) visit(modName(f));
    order.push({ name, file: d.file });
  };
  roots.forEach(visit);
  return order;
}

function modName(file) {
  return path.basename(file).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

const INIT = fs.readFileSync(new URL('./vm-init.sh', import.meta.url), 'utf8');
const CHROOT_MODPROBE = '#!/bin/busybox sh\nexec /bin/chroot /root /sbin/modprobe "$@"\n';

/** The initramfs for a kernel (a name, or what fetch() returned), cached next to it under a hash of what went in. */
export async function initrd(name) {
  const k = typeof name === 'string' ? await fetch(name) : name;
  const order = moduleOrder(k.modules);
  const busybox = '/bin/busybox';
  const hash = createHash('sha256').update(INIT).update(CHROOT_MODPROBE).update(JSON.stringify(order)).update(await fs.readFile(busybox)).digest('hex').slice(0, 12);
  const out = path.join(k.dir, `initrd-${hash}.cpio.gz`);
  if (fs.existsSync(out)) return out;

  const stage = await fs.mkdtemp(path.join(os.tmpdir(), 'gadget-run-initrd-'));
  try {
    for (const d of ['bin', 'modules', 'proc', 'sys', 'dev', 'lower', 'rw', 'root']) await fs.mkdirp(path.join(stage, d));
    await fs.copy(busybox, path.join(stage, 'bin', 'busybox'));
    // busybox insmod cannot read compressed modules: unpack them here
    for (const { name, file } of order) {
      const src = path.join(k.modules, file);
      const dst = path.join(stage, 'modules', `${name}.ko`);
      if (file.endsWith('.xz')) await $`xz -dc ${src} > ${dst}`;
      else if (file.endsWith('.zst')) await $`zstd -qdc ${src} > ${dst}`;
      else await fs.copy(src, dst);
      if (!(await fs.stat(dst)).size) throw new Error(`vm: unpacking ${src} gave an empty module`);
    }
    await fs.writeFile(path.join(stage, 'modules', 'order'), order.map((o) => `${o.name}.ko\n`).join(''));
    await fs.writeFile(path.join(stage, 'init'), INIT, { mode: 0o755 });
    await fs.writeFile(path.join(stage, 'bin', 'chroot-modprobe'), CHROOT_MODPROBE, { mode: 0o755 });
    const tmp = `${out}.${process.pid}`;
    await $({ cwd: stage })`find . | sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 > ${tmp}`;
    await fs.rename(tmp, out);
  } finally {
    await fs.remove(stage);
  }
  return out;
}

/**
 * What the guest's init runs in the chroot: note when it started (the boot's length), go to
 * `cwd`, exec `cmd` with exactly `env`. Every word quoted: values may hold anything.
 */
export function jobScript({ started, cwd, env, cmd }) {
  return [
    `cut -d' ' -f1 /proc/uptime > ${shq(started)}`,
    `cd ${shq(cwd)} || exit 125`,
    `exec /usr/bin/env -i ${Object.entries(env).map(([key, v]) => shq(`${key}=${v}`)).join(' ')} ${cmd.map(shq).join(' ')}`,
    '',
  ].join('\n');
}

/** A shell word that stays one word whatever it holds. */
const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/**
 * One user of guests at a time on this machine (scripts/lock.mjs): under TCG a guest takes every
 * core it is given, and guests started without regard to each other would slow each other (and
 * everyone else) past their timeouts. The lock is the process's, not the guest's: guests one
 * process starts together (the matrix's kernels, sized to share the cores: --smp 1 each) run side
 * by side, and another process's guests wait until the last of them ends.
 */
const LOCK = process.env.GADGET_RUN_VM_LOCK ?? '/run/gadget-run-vm.lock';

/** This process's holds, per lock file: how many of its guests use each, and the lock() they share. */
const holds = new Map();

/**
 * A share of this process's hold on the guests' lock (`file`, LOCK by default), taken for one
 * guest: the first share waits for other processes' guests; its unlock() releases the lock
 * with the last share.
 */
export async function guestSlot(what, { maxWaitMs, file = LOCK } = {}) {
  if (!holds.has(file)) {
    const h = { users: 0, taken: lock(file, { what, log, maxWaitMs }) };
    holds.set(file, h);
    // a wait that failed is not a hold: the next guest tries afresh
    h.taken.catch(() => { if (holds.get(file) === h) holds.delete(file); });
  }
  const h = holds.get(file);
  h.users++;
  let got;
  try {
    got = await h.taken;
  } catch (err) {
    h.users--;
    throw err;
  }
  let mine = true;
  return {
    waitedMs: got.waitedMs,
    unlock: () => {
      if (!mine) return;
      mine = false;
      if (--h.users > 0) return;
      if (holds.get(file) === h) holds.delete(file);
      got.unlock();
    },
  };
}

/**
 * What on the guest's console means it will not finish sanely: a kernel that locked up, panicked,
 * oopsed or stalled. The guest is killed at the first such line (after a moment for the trace that
 * follows it), with that line as the reason, rather than left to reach the timeout.
 */
export const FATAL_CONSOLE = /watchdog: BUG: soft lockup[^\n]*|Watchdog detected hard LOCKUP[^\n]*|Kernel panic - not syncing[^\n]*|rcu: INFO: rcu_\w+ (?:self-)?detected stalls?[^\n]*|INFO: task \S+ blocked for more than \d+ seconds[^\n]*|BUG: [^\n]*|Oops: [^\n]*/;

/** The guest's init writes its uptime to a port every HEARTBEAT_S s; a guest silent for stallMs is hung. */
const HEARTBEAT_S = 5;

/** Parses 10m, 90s, 1h, or milliseconds. */
export function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s));
  if (!m) throw new Error(`vm: bad duration "${s}" (use e.g. 90s, 10m, 1h)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'];
}

function accel() {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return { accel: 'kvm', cpu: 'host' };
  } catch {
    return { accel: 'tcg', cpu: 'max' };
  }
}

/**
 * Boots KERNEL and runs cmd (argv, never a shell string) as root in the host's root at
 * `cwd`, with exactly `env` (plus PATH and HOME unless given). The guest's stdout and
 * stderr stream to `stdout`/`stderr` as it writes them (two virtio-serial ports), the
 * kernel's console goes to a boot log (`bootLog`, else a temp file). Resolves with the
 * command's exit code and timings (`ms` from qemu's start to its end, `waitedMs` for another
 * guest before that; `timeoutMs` counts from qemu's start too, `maxWaitMs` bounds the wait);
 * rejects when the guest did not report one (the boot log's tail says why), and after killing
 * qemu when `timeoutMs` passed, when the guest's heartbeat stopped for `stallMs` (3 min), when
 * its console shows a lockup, panic, oops or stall (FATAL_CONSOLE), or when this process gets
 * SIGTERM, SIGINT or SIGHUP (then the signal takes its course). qemu runs under
 * `setpriv --pdeathsig KILL`: it dies with this process even when that is SIGKILLed.
 */
/** The host folders the guest's init covers with tmpfs of its own (scripts/vm-init.sh). */
const GUEST_TMPFS = ['/tmp', '/run', '/var/cache', '/dev/shm'];

export async function run(name, cmd, opts = {}) {
  const { env = {}, cwd = process.cwd(), timeoutMs = 10 * 60_000, shares = [], memory = '3G', smp = 2 } = opts;
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  if (!cmd.length) throw new Error('vm run: no command (vm.mjs run KERNEL -- CMD…)');
  const k = await fetch(name);
  const initramfs = await initrd(k);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gadget-run-vm-'));
  // the kernel's console: kept where the caller asks (the matrix keeps it with its results)
  const bootLog = opts.bootLog ? path.resolve(opts.bootLog) : path.join(dir, 'boot.log');
  const runDir = path.join(dir, 'run');
  await fs.mkdirp(runDir);
  const guestEnv = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin', HOME: '/root', ...env };
  await fs.writeFile(path.join(runDir, 'job.sh'), jobScript({ started: path.join(runDir, 'started'), cwd, env: guestEnv, cmd }));
  const absShares = shares.map((s) => path.resolve(s));
  for (const s of absShares) if (!fs.statSync(s, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`vm run: --share ${s} is not a folder`);
  // the guest mounts its own tmpfs over these host folders: a cwd below one (a checkout made with
  // mktemp -d) would be an empty folder there, so it goes in as a read-only share of its own,
  // mounted before the others (which may lie below it)
  const absCwd = path.resolve(cwd);
  const hidden = GUEST_TMPFS.some((m) => absCwd === m || absCwd.startsWith(`${m}/`));
  const roShares = hidden ? [absCwd] : [];
  await fs.writeFile(path.join(runDir, 'shares'), [...roShares.map((s, i) => `gadgetrun.ro${i} ${s}\n`), ...absShares.map((s, i) => `gadgetrun.share${i} ${s}\n`)].join(''));
  await fs.writeFile(path.join(runDir, 'modules'), k.modules);
  await fs.writeFile(path.join(runDir, 'hostname'), `vm-${name}`.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63));

  const virtfs = (p, tag, ro) => ['-virtfs', `local,path=${p},mount_tag=${tag},security_model=none,multidevs=remap${ro ? ',readonly=on' : ''}`];
  const { accel: acc, cpu } = accel();
  const args = [
    '-machine', `q35,accel=${acc}`, '-cpu', cpu, '-smp', String(smp), '-m', memory,
    '-nodefaults', '-display', 'none', '-monitor', 'none', '-no-reboot',
    '-serial', `file:${bootLog}`,
    '-kernel', k.uncompressed ? k.vmlinux : k.vmlinuz, '-initrd', initramfs,
    '-append', `console=ttyS0 panic=-1 quiet printk.time=1 mitigations=off ${opts.append ?? process.env.GADGET_RUN_VM_APPEND ?? ''} gadgetrun.dir=${runDir}`,
    ...virtfs('/', 'hostroot', true), ...virtfs(runDir, 'gadgetrun.run', false),
    ...roShares.flatMap((s, i) => virtfs(s, `gadgetrun.ro${i}`, true)),
    ...absShares.flatMap((s, i) => virtfs(s, `gadgetrun.share${i}`, false)),
    '-device', 'virtio-serial-pci',
    // the guest's stdout and stderr, apart from the console and qemu's own messages: files
    // that run() follows (node's extra stdio fds are sockets, which qemu's file backend cannot open)
    '-chardev', `file,id=gout,path=${path.join(dir, 'stdout')}`, '-device', 'virtserialport,chardev=gout,name=gadgetrun.stdout',
    '-chardev', `file,id=gerr,path=${path.join(dir, 'stderr')}`, '-device', 'virtserialport,chardev=gerr,name=gadgetrun.stderr',
    // the init's heartbeat: a guest that stops writing it is hung, whatever its console says
    '-chardev', `file,id=gbeat,path=${path.join(dir, 'heartbeat')}`, '-device', 'virtserialport,chardev=gbeat,name=gadgetrun.heartbeat',
  ];
  const { unlock, waitedMs } = await guestSlot(`vm: run ${name}`, { maxWaitMs: opts.maxWaitMs });
  const t0 = Date.now();
  const stallMs = opts.stallMs ?? 3 * 60_000;
  const handlers = [];
  try {
    // setpriv --pdeathsig: the kernel kills qemu when this process dies, even by SIGKILL
    const [exe, ...pre] = whichSync('setpriv') ? ['setpriv', '--pdeathsig', 'KILL', '--', 'qemu-system-x86_64'] : ['qemu-system-x86_64'];
    const qemu = spawn(exe, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let qemuOut = '';
    qemu.stdout.on('data', (d) => { qemuOut += d; });
    qemu.stderr.on('data', (d) => { qemuOut += d; });
    let killed = null; // why we killed it
    const kill = (why) => {
      killed ??= why;
      qemu.kill('SIGKILL');
    };
    // ... and when this process is told to end: qemu first, then the signal's own course
    const on = (ev, fn) => {
      process.on(ev, fn);
      handlers.push([ev, fn]);
    };
    on('exit', () => qemu.kill('SIGKILL'));
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
      on(sig, function onSignal() {
        kill(`${sig} to pid ${process.pid}`);
        handlers.forEach(([ev, fn]) => process.off(ev, fn));
        unlock();
        if (!process.listenerCount(sig)) process.kill(process.pid, sig);
      });
    }
    const follow = [new Follower(path.join(dir, 'stdout'), stdout), new Follower(path.join(dir, 'stderr'), stderr)];
    const consoleLog = new Follower(bootLog, null);
    const beat = new Follower(path.join(dir, 'heartbeat'), null);
    let lastBeat = Date.now();
    let fatal = null;
    const poll = setInterval(() => {
      follow.forEach((f) => f.step());
      if (beat.step()) lastBeat = Date.now();
      else if (!killed && Date.now() - lastBeat > stallMs) {
        kill(`no progress: the guest's heartbeat (every ${HEARTBEAT_S} s from its init) stopped ${Math.round((Date.now() - lastBeat) / 1000)} s ago`);
      }
      if (!fatal && consoleLog.step()) {
        const m = FATAL_CONSOLE.exec(consoleLog.text.slice(-65536));
        // a moment for the trace that follows the line, then the kill
        if (m) fatal = setTimeout(() => kill(`the guest's console says: ${m[0].trim()}`), 2000);
      }
    }, 100);
    const timer = setTimeout(() => kill(`did not finish within ${timeoutMs / 1000} s`), timeoutMs);
    const exit = await new Promise((resolve, reject) => {
      qemu.once('error', reject);
      qemu.once('close', (code, signal) => resolve({ code, signal }));
    }).finally(() => {
      clearTimeout(timer);
      clearTimeout(fatal);
      clearInterval(poll);
      follow.forEach((f) => f.step());
    });
    const ms = Date.now() - t0;
    const tail = () => tailOf(bootLog, qemuOut);
    if (killed) throw new Error(`vm: ${name} (${k.release}): ${cmd.join(' ')}: qemu killed after ${(ms / 1000).toFixed(0)} s: ${killed}.\n${tail()}`);
    const rc = readOrNull(path.join(runDir, 'rc'));
    if (rc == null || !/^\d+\s*$/.test(rc)) {
      throw new Error(`vm: ${name} (${k.release}): the guest ended (qemu ${exit.signal ?? `exit ${exit.code}`}) without reporting an exit code.\n${tail()}`);
    }
    const started = readOrNull(path.join(runDir, 'started'));
    return { code: Number(rc), ms, waitedMs, bootMs: started ? Math.round(Number(started) * 1000) : null, kernel: k.release, package: k.package, version: k.version, accel: acc, smp };
  } finally {
    handlers.forEach(([ev, fn]) => process.off(ev, fn));
    unlock();
    if (!opts.keep) await fs.remove(dir);
  }
}

/** Whether a program is on PATH. */
function whichSync(prog) {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, prog), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Copies what is appended to a file to a stream, a step at a time. */
class Follower {
  constructor(file, to) {
    this.file = file;
    this.to = to;
    this.pos = 0;
    this.text = '';
  }

  /** Copies what is new (to `to`, or into `text` without one); whether there was anything. */
  step() {
    let fd;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return false; // qemu has not created it yet
    }
    const from = this.pos;
    try {
      const buf = Buffer.alloc(1 << 16);
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, this.pos)) > 0; this.pos += n) {
        if (this.to) this.to.write(Buffer.from(buf.subarray(0, n)));
        else this.text = (this.text + buf.toString('latin1', 0, n)).slice(-(1 << 20));
      }
    } finally {
      fs.closeSync(fd);
    }
    return this.pos > from;
  }
}

function readOrNull(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function tailOf(bootLog, qemuOut) {
  const lines = (readOrNull(bootLog) ?? '').trimEnd().split('\n').slice(-25).join('\n');
  return `qemu: ${qemuOut.trim() || '(nothing)'}\nboot log (last lines):\n${lines || '(empty)'}`;
}

/** The matrix's names and what each resolves to now (no download). */
export async function kernels() {
  const out = {};
  for (const [name, meta] of Object.entries(KERNELS)) out[name] = { package: meta, resolves: await resolvePackage(name).catch((e) => `(${e.message})`) };
  return out;
}

const USAGE = `usage: scripts/vm.mjs fetch KERNEL | initrd KERNEL | kernels
       scripts/vm.mjs run [--env K=V|K]… [--share DIR]… [--timeout 10m] [--stall 3m] [--memory 3G] [--smp 2] [--boot-log FILE] KERNEL -- CMD [ARG…]
KERNEL: ${Object.keys(KERNELS).join(', ')}, a linux-image-… package or a fetched release`;

async function main(argv) {
  const [cmd, ...rest] = argv;
  if (cmd === 'fetch' || cmd === 'initrd') {
    if (rest.length !== 1) throw new UsageError(`${cmd} takes one KERNEL`);
    const k = await fetch(rest[0]);
    console.log(cmd === 'fetch' ? JSON.stringify(k) : await initrd(k.release));
    return 0;
  }
  if (cmd === 'kernels') {
    console.log(JSON.stringify(await kernels(), null, 2));
    return 0;
  }
  if (cmd === 'run') {
    const sep = rest.indexOf('--');
    if (sep < 0) throw new UsageError('run needs -- before the command');
    const opts = { env: {}, shares: [] };
    const flags = rest.slice(0, sep);
    const positional = [];
    for (let i = 0; i < flags.length; i++) {
      const f = flags[i];
      const value = () => {
        if (i + 1 >= flags.length) throw new UsageError(`${f} needs a value`);
        return flags[++i];
      };
      if (f === '--env') {
        const v = value();
        const eq = v.indexOf('=');
        if (eq > 0) opts.env[v.slice(0, eq)] = v.slice(eq + 1);
        else if (process.env[v] !== undefined) opts.env[v] = process.env[v];
      } else if (f === '--share') opts.shares.push(value());
      else if (f === '--timeout') opts.timeoutMs = parseDuration(value());
      else if (f === '--boot-log') opts.bootLog = value();
      else if (f === '--stall') opts.stallMs = parseDuration(value());
      else if (f === '--memory') opts.memory = value();
      else if (f === '--smp') opts.smp = Number(value());
      else if (f.startsWith('-')) throw new UsageError(`unknown option ${f}`);
      else positional.push(f);
    }
    if (positional.length !== 1) throw new UsageError('run takes one KERNEL before --');
    const r = await run(positional[0], rest.slice(sep + 1), opts);
    log(`${r.kernel} (${r.accel}): exit ${r.code}; job started ${r.bootMs} ms after boot, ${(r.ms / 1000).toFixed(1)} s in all`);
    return r.code;
  }
  throw new UsageError(cmd ? `unknown command ${cmd}` : 'no command');
}

class UsageError extends Error {}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`vm: ${err.message}\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(err.message);
      process.exitCode = 1;
    }
  }
}
