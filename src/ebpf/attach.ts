/**
 * Attach kinds that are not a program's own section: a socket filter on a
 * packet socket (in a chosen network namespace) and cgroup_skb programs on
 * a cgroup v2 directory found by its id.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KernelError, hintFor } from './errors.ts';
import { errno, native } from './libbpf.ts';

const AF_PACKET = 17;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ATTACH_BPF = 50;
const ETH_P_ALL = 0x0003;
const CLONE_NEWNET = 0x40000000;

/** What BpfObject keeps to detach: a libbpf link, or a socket whose filter goes with it. */
export interface Attachment {
  readonly program: string;
  destroy(): void;
}

/** A packet socket carrying a socket filter; closing it detaches the filter. */
export class PacketSocket implements Attachment {
  constructor(private fd: number, readonly program: string) {}
  destroy(): void {
    if (this.fd < 0) return;
    native().close(this.fd);
    this.fd = -1;
  }
}

/**
 * An AF_PACKET socket seeing every packet of every device in a network
 * namespace (`netns`: a path such as /proc/PID/ns/net or /var/run/netns/NAME;
 * default: ours), with the program attached as its filter. SOCK_DGRAM, so the
 * filter sees packets from the network header on. The socket is bound to
 * ETH_P_ALL only after the filter is attached, so no unfiltered packet is
 * ever queued on it; the program returns 0, so none is queued after either.
 */
export function openPacketSocket(programFd: number, program: string, netns?: string): PacketSocket {
  const n = native();
  const fd = netns ? inNetns(netns, () => packetSocket()) : packetSocket();
  try {
    const value = Buffer.alloc(4);
    value.writeInt32LE(programFd);
    if (n.setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, value, 4) < 0) {
      const e = errno();
      throw new KernelError(`attach socket filter ${program} (setsockopt SO_ATTACH_BPF)`, e, hintFor(e));
    }
    // struct sockaddr_ll: family, protocol (network order), ifindex 0 = every device
    const addr = Buffer.alloc(20);
    addr.writeUInt16LE(AF_PACKET, 0);
    addr.writeUInt16BE(ETH_P_ALL, 2);
    if (n.bind(fd, addr, addr.length) < 0) {
      const e = errno();
      throw new KernelError(`bind the packet socket of ${program} to every device`, e, hintFor(e));
    }
  } catch (err) {
    n.close(fd);
    throw err;
  }
  return new PacketSocket(fd, program);
}

function packetSocket(): number {
  // protocol 0: the socket receives nothing until bind names ETH_P_ALL
  const fd = native().socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    throw new KernelError('open a packet socket (AF_PACKET)', e, hintFor(e) ?? 'needs CAP_NET_RAW');
  }
  return fd;
}

/**
 * Run `fn` with this thread in the network namespace at `nsPath`, then
 * return to our own. A socket keeps the namespace it was created in, so
 * only its creation needs to happen inside; setns(CLONE_NEWNET) affects the
 * calling thread alone, and koffi's synchronous calls run on this one.
 */
export function inNetns<T>(nsPath: string, fn: () => T): T {
  const n = native();
  let target: number;
  try {
    target = fs.openSync(nsPath, 'r');
  } catch (err) {
    throw new Error(`network namespace ${nsPath}: ${(err as Error).message} — give a path such as /proc/PID/ns/net or /var/run/netns/NAME`, { cause: err });
  }
  const own = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    if (n.setns(target, CLONE_NEWNET) < 0) {
      const e = errno();
      throw new KernelError(`enter network namespace ${nsPath} (setns)`, e, e === 22 ? 'it is not a network namespace (give /proc/PID/ns/net or /var/run/netns/NAME)' : hintFor(e));
    }
    try {
      return fn();
    } finally {
      if (n.setns(own, CLONE_NEWNET) < 0) {
        // every later socket of this process would land in the wrong namespace
        throw new KernelError(`return to our network namespace after ${nsPath} (setns)`, errno(), 'the process is left in the wrong namespace; exit');
      }
    }
  } finally {
    fs.closeSync(own);
    fs.closeSync(target);
  }
}

/**
 * The directory of the cgroup v2 with this id (the inode of its directory)
 * at depth `level` below the root: only directories at that depth are
 * looked at, so the walk stays small on a node with many cgroups.
 */
export function cgroupDirById(id: bigint, level: number): string {
  const root = cgroup2Root();
  let dirs = [root];
  for (let depth = 0; depth < level && dirs.length; depth++) {
    dirs = dirs.flatMap((d) => {
      try {
        return fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(d, e.name));
      } catch {
        return []; // removed while we looked
      }
    });
  }
  const found = dirs.find((d) => {
    try {
      return fs.statSync(d, { bigint: true }).ino === id;
    } catch {
      return false;
    }
  });
  if (!found) throw new Error(`no cgroup v2 directory with id ${id} at depth ${level} under ${root} (was the cgroup removed?)`);
  return found;
}

function cgroup2Root(): string {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.split(' ')[0] === 'cgroup2') return pre.split(' ')[4];
  }
  throw new Error('no cgroup v2 mount in /proc/self/mountinfo — attaching to a workload cgroup needs cgroup v2');
}
