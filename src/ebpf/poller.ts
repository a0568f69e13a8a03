/**
 * One epoll set for every ring buffer (and, later, perf event fds and timers)
 * of the process, with ONE koffi async epoll_wait in flight at a time however
 * many fds are registered.
 *
 * Why: an async koffi call holds one of libuv's 4 thread-pool threads for as
 * long as it blocks. With a wait per ring, 8 streams took 201 ms to do 100 ms
 * of 10 ms waits and 20 took 502 ms, and every BPF object load, file write and
 * DNS lookup queued behind them. Here the waits share one thread: each fd's
 * owner holds a Registration and awaits `wait()`, which resolves when the
 * kernel signals its fd (edge-triggered: a ring buffer polls readable while
 * anything is unread, so level-triggered would spin) or on the shared
 * TICK_MS timer tick, which is the consumers' timer drain (docs/architecture.md).
 */
import { KernelError } from './errors.ts';
import { native, errno } from './libbpf.ts';

/** The timer drain: every waiter is woken at least this often. */
export const TICK_MS = 10;

const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 1;
const EPOLLET = 0x80000000;
const EPOLL_CLOEXEC = 0o2000000;
const EINTR = 4;
/** ready fds fetched per wait; the rest stay on the kernel's ready list for the next one */
const MAX_EVENTS = 64;
// struct epoll_event { u32 events; u64 data; } is packed on x86-64 only
const EVENT_BYTES = process.arch === 'x64' ? 12 : 16;
const DATA_OFFSET = process.arch === 'x64' ? 4 : 8;

/** Why a wait returned: the kernel signalled the fd, the shared tick, or the registration was closed. */
export type Wakeup = 'ready' | 'tick' | 'closed';

export class Registration {
  /** resolves the owner's current wait(), if one is pending */
  private wake: ((why: Wakeup) => void) | undefined;
  private fail: ((err: Error) => void) | undefined;
  /** the fd was signalled while its owner was not waiting: the next wait() returns at once */
  private signalled = false;
  private closed = false;

  constructor(private readonly poller: Poller, readonly fd: number) {}

  /** Resolve when the fd is signalled, on the next shared tick, or at once if it was signalled meanwhile. */
  wait(): Promise<Wakeup> {
    if (this.closed) return Promise.resolve('closed');
    if (this.wake) throw new Error(`poller: fd ${this.fd} already has a pending wait (one owner per registration)`);
    if (this.signalled) {
      this.signalled = false;
      return Promise.resolve('ready');
    }
    return new Promise((resolve, reject) => {
      this.wake = resolve;
      this.fail = reject;
      this.poller.waiting();
    });
  }

  /**
   * Remove the fd from the epoll set (before its owner closes it) and wake a
   * pending wait. Resolves once the poller has let go of the fd; when this was
   * the last registration, once the epoll fd is closed too.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.resolve('closed');
    return this.poller.remove(this);
  }

  get isWaiting(): boolean {
    return this.wake !== undefined;
  }

  /** @internal the fd was reported ready */
  signal(): void {
    if (this.wake) this.resolve('ready');
    else this.signalled = true;
  }

  /** @internal wake a pending wait */
  resolve(why: Wakeup): void {
    const wake = this.wake;
    this.wake = this.fail = undefined;
    wake?.(why);
  }

  /** @internal the epoll set failed */
  reject(err: Error): void {
    const fail = this.fail;
    this.wake = this.fail = undefined;
    fail?.(err);
  }
}

export class Poller {
  private epfd = -1;
  private readonly registrations = new Map<number, Registration>();
  private readonly events = Buffer.alloc(MAX_EVENTS * EVENT_BYTES);
  private nextTick = 0;
  private inFlight = false;
  /** resolved when the in-flight wait returns (for closes that must not pull the epoll fd from under it) */
  private afterWait: (() => void)[] = [];
  /** koffi async calls in flight now, and the most there ever were (tests and benches read them) */
  pendingAsyncCalls = 0;
  peakAsyncCalls = 0;
  /** async waits made so far */
  asyncCalls = 0;

  /** Add `fd` (a ring buffer map, an eventfd, ...) edge-triggered for readability. */
  register(fd: number): Registration {
    if (this.registrations.has(fd)) throw new Error(`poller: fd ${fd} is already registered`);
    const n = native();
    if (this.epfd < 0) {
      this.epfd = n.epoll_create1(EPOLL_CLOEXEC);
      if (this.epfd < 0) throw new KernelError('epoll_create1', errno());
    }
    const ev = Buffer.alloc(EVENT_BYTES);
    ev.writeUInt32LE((EPOLLIN | EPOLLET) >>> 0, 0);
    ev.writeUInt32LE(fd, DATA_OFFSET);
    if (n.epoll_ctl(this.epfd, EPOLL_CTL_ADD, fd, ev) < 0) {
      const e = errno();
      this.closeIfUnused();
      throw new KernelError(`epoll_ctl add fd ${fd}`, e);
    }
    const reg = new Registration(this, fd);
    this.registrations.set(fd, reg);
    return reg;
  }

  /** The epoll fd (-1 when no fd is registered and no wait is in flight). */
  get fd(): number {
    return this.epfd;
  }

  get size(): number {
    return this.registrations.size;
  }

  /** @internal a registration started waiting: make sure one wait is in flight */
  waiting(): void {
    if (this.inFlight) return;
    const now = performance.now();
    // after an idle spell the tick restarts from now, so a new waiter gets a full tick
    if (this.nextTick <= now) this.nextTick = now + TICK_MS;
    this.startWait(now);
  }

  /** @internal */
  remove(reg: Registration): Promise<void> {
    if (this.registrations.get(reg.fd) !== reg) return Promise.resolve();
    this.registrations.delete(reg.fd);
    // DEL may fail only if the owner already closed the fd, which removed it from the set anyway
    native().epoll_ctl(this.epfd, EPOLL_CTL_DEL, reg.fd, null);
    if (!this.inFlight) {
      this.closeIfUnused();
      return Promise.resolve();
    }
    // the worker thread is inside epoll_wait on our epoll fd: close it when that returns
    return new Promise((resolve) => this.afterWait.push(resolve));
  }

  private startWait(now: number): void {
    const timeout = Math.max(0, Math.ceil(this.nextTick - now));
    this.inFlight = true;
    this.pendingAsyncCalls++;
    this.asyncCalls++;
    if (this.pendingAsyncCalls > this.peakAsyncCalls) this.peakAsyncCalls = this.pendingAsyncCalls;
    native().epoll_wait.async(this.epfd, this.events, MAX_EVENTS, timeout, (err: unknown, ready: number) => {
      this.pendingAsyncCalls--;
      this.inFlight = false;
      this.afterWaitReturned(err, ready);
    });
  }

  private afterWaitReturned(err: unknown, ready: number): void {
    let failure: Error | undefined;
    if (err) failure = new Error(`poller: epoll_wait: ${String(err)}`, { cause: err });
    else if (ready < 0) ({ ready, failure } = this.retryWithoutBlocking());
    for (let i = 0; i < ready; i++) {
      const fd = this.events.readUInt32LE(i * EVENT_BYTES + DATA_OFFSET);
      this.registrations.get(fd)?.signal();
    }
    const now = performance.now();
    if (failure || now >= this.nextTick) {
      this.nextTick = now + TICK_MS;
      for (const reg of this.registrations.values()) {
        if (failure) reg.reject(failure);
        else reg.resolve('tick');
      }
    }
    const closes = this.afterWait;
    this.afterWait = [];
    this.closeIfUnused();
    for (const done of closes) done();
    if (!failure && this.epfd >= 0 && [...this.registrations.values()].some((r) => r.isWaiting)) this.startWait(now);
  }

  /**
   * The async call's errno is the worker thread's, not ours: repeat the wait
   * without blocking to learn it (and to collect what is ready). EINTR is a
   * spurious wakeup, not a failure.
   */
  private retryWithoutBlocking(): { ready: number; failure?: Error } {
    const rc = native().epoll_wait(this.epfd, this.events, MAX_EVENTS, 0);
    if (rc >= 0) return { ready: rc };
    const e = errno();
    if (e === EINTR) return { ready: 0 };
    return { ready: 0, failure: new KernelError(`epoll_wait on the shared poller (fd ${this.epfd})`, e) };
  }

  private closeIfUnused(): void {
    if (this.registrations.size || this.inFlight || this.epfd < 0) return;
    native().close(this.epfd);
    this.epfd = -1;
  }
}

let shared: Poller | undefined;

/** The process's poller: every stream session registers its ring here. */
export function sharedPoller(): Poller {
  return (shared ??= new Poller());
}
