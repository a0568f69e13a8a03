/**
 * A compiled CO-RE object: open, set read-only constants, size maps, load,
 * attach, read globals, close. Kernel objects are released in reverse order.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inNetns, openPacketSocket, type Attachment } from './attach.ts';
import { Btf, type BtfVariable } from './btf.ts';
import { KernelError, hintFor } from './errors.ts';
import { native, errno, isNull, view, type Pointer } from './libbpf.ts';
import { captureLibbpfLog, loadFailureOf, takeLibbpfLog } from './log.ts';
import { KernelMap } from './map.ts';
import { mark } from '../timing.ts';

/** a .rodata constant's value: a scalar, a string for a char array, numbers for an integer array */
export type ConstantValue = number | bigint | string | boolean | readonly number[];

export interface ProgramInfo {
  name: string;
  section: string;
}

/** A libbpf link; destroy() detaches it. */
export class Link implements Attachment {
  constructor(private ptr: Pointer, readonly program: string) {}
  get fd(): number {
    return native().bpf_link__fd(this.ptr);
  }
  destroy(): void {
    if (this.ptr === null) return;
    native().bpf_link__destroy(this.ptr);
    this.ptr = null;
  }
}

export class BpfObject {
  readonly btf: Btf;
  private links: Attachment[] = [];
  private loaded = false;
  private closed = false;

  private constructor(private readonly ptr: Pointer, readonly file: string) {
    const n = native();
    const size = [0];
    const btf = n.bpf_object__btf(ptr);
    if (isNull(btf)) {
      n.bpf_object__close(ptr);
      throw new Error(`${file}: the object has no BTF; build it with clang -g`);
    }
    const raw = n.btf__raw_data(btf, size);
    // copy: the BTF is needed after close (decoders keep layouts)
    this.btf = new Btf(new Uint8Array(view(raw, size[0])).slice());
  }

  /**
   * `coreBtf`: a BTF file to do CO-RE relocations against instead of the
   * kernel's own (a minimized one: core-btf.ts; a --btf file or a btfgen
   * folder's: kernel-btf.ts).
   */
  static open(file: string, opts: { coreBtf?: string } = {}): BpfObject {
    if (!fs.existsSync(file)) {
      throw new Error(`${file}: BPF object not found — build the objects with \`make -C bpf\` (or run ./scripts/setup)`);
    }
    captureLibbpfLog();
    takeLibbpfLog();
    const n = native();
    const ptr = n.bpf_object__open_file(file, opts.coreBtf === undefined ? null : { sz: n.openOptsSize, btf_custom_path: opts.coreBtf });
    if (isNull(ptr)) {
      const e = errno();
      throw new KernelError(`open ${path.basename(file)}`, e, takeLibbpfLog().trim() || hintFor(e));
    }
    const obj = new BpfObject(ptr, file);
    mark(`opened ${obj.name}${opts.coreBtf === undefined ? '' : ' (minimized CO-RE BTF)'}`);
    return obj;
  }

  get name(): string {
    return path.basename(this.file);
  }

  programs(): ProgramInfo[] {
    const n = native();
    const out: ProgramInfo[] = [];
    for (let p = n.bpf_object__next_program(this.ptr, null); !isNull(p); p = n.bpf_object__next_program(this.ptr, p)) {
      out.push({ name: n.bpf_program__name(p), section: n.bpf_program__section_name(p) });
    }
    return out;
  }

  /** Leave a program out of load and attach (its hook is missing here, say). */
  disableProgram(name: string): void {
    native().bpf_program__set_autoload(this.program(name), false);
  }

  /** Whether load will load this program (not left out with disableProgram). */
  autoloads(name: string): boolean {
    return native().bpf_program__autoload(this.program(name));
  }

  /** Write `const volatile` globals before load (filters, options). */
  setConstants(values: Record<string, ConstantValue>): void {
    if (this.loaded) throw new Error(`${this.name}: constants must be set before load`);
    const map = this.mapBySuffix('.rodata');
    const vars = this.btf.variables('.rodata');
    const size = [0];
    const ptr = native().bpf_map__initial_value(map, size);
    const bytes = new Uint8Array(view(ptr, size[0]));
    for (const [name, value] of Object.entries(values)) {
      const v = vars.get(name);
      if (!v) throw new Error(`${this.name}: no constant "${name}" (has: ${[...vars.keys()].join(', ')})`);
      writeValue(bytes, v, value, this.name);
    }
  }

  setMaxEntries(mapName: string, entries: number): void {
    const n = native();
    const rc = n.bpf_map__set_max_entries(this.map(mapName), entries);
    if (rc < 0) throw new KernelError(`${this.name}: resize map ${mapName} to ${entries}`, -rc);
  }

  /**
   * Verify and load every program. It runs off the main thread, so several
   * objects load in parallel (most of the time goes to CO-RE against the
   * kernel's BTF).
   */
  async load(): Promise<void> {
    takeLibbpfLog();
    const rc = await new Promise<number>((resolve, reject) =>
      native().bpf_object__load.async(this.ptr, (err: unknown, res: number) => (err ? reject(err) : resolve(res))),
    );
    if (rc < 0) {
      const log = takeLibbpfLog();
      const logFile = path.join(os.tmpdir(), `gadget-run-${path.basename(this.file, '.bpf.o')}-${process.pid}.log`);
      fs.writeFileSync(logFile, log);
      const failure = { ...loadFailureOf(log), logFile };
      const why = failure.verifier ? 'the verifier rejected a program' : (hintFor(-rc) ?? 'see the libbpf log');
      throw new KernelError(`load ${this.name}`, -rc, `${why}; full log in ${logFile}`, { load: failure });
    }
    this.loaded = true;
    mark(`loaded ${this.name}`);
  }

  /** Attach every loaded program by its section (tracepoint/..., raw_tp/..., tp_btf/...), but those in `except` (attached otherwise). */
  attachAll(except: readonly string[] = []): void {
    const n = native();
    for (let p = n.bpf_object__next_program(this.ptr, null); !isNull(p); p = n.bpf_object__next_program(this.ptr, p)) {
      if (!n.bpf_program__autoload(p)) continue;
      const name = n.bpf_program__name(p);
      if (except.includes(name)) continue;
      const link = n.bpf_program__attach(p);
      if (isNull(link)) {
        const e = errno();
        throw new KernelError(`attach ${this.name}:${name} (${n.bpf_program__section_name(p)})`, e, hintFor(e));
      }
      this.links.push(new Link(link, name));
    }
    mark(`attached ${this.name}`);
  }

  /**
   * Attach a SEC("socket") program as the filter of a packet socket seeing
   * every device of a network namespace (a path; default: ours).
   */
  attachSocketFilter(program: string, netns?: string): void {
    const fd = native().bpf_program__fd(this.program(program));
    if (fd < 0) throw new Error(`${this.name}: program ${program} is not loaded`);
    this.links.push(openPacketSocket(fd, program, netns));
  }

  /** Attach a cgroup program (cgroup_skb/ingress, ...) to the cgroup v2 directory open as `cgroupFd`. */
  attachCgroup(program: string, cgroupFd: number): void {
    const link = native().bpf_program__attach_cgroup(this.program(program), cgroupFd);
    if (isNull(link)) {
      const e = errno();
      throw new KernelError(`attach ${this.name}:${program} to a cgroup`, e, hintFor(e));
    }
    this.links.push(new Link(link, program));
  }

  /**
   * Attach a SEC("perf_event") program to an open perf event; the link owns
   * the perf fd (libbpf closes it when the link is destroyed), here or not.
   */
  attachPerfEvent(program: string, perfFd: number): void {
    const link = native().bpf_program__attach_perf_event(this.program(program), perfFd);
    if (isNull(link)) {
      const e = errno();
      native().close(perfFd);
      throw new KernelError(`attach ${this.name}:${program} to a perf event`, e, hintFor(e));
    }
    this.links.push(new Link(link, program));
  }

  /**
   * Attach an iter/* program and open one pass of it as a readable fd. With
   * `netns`, the fd is created inside that network namespace: iter/tcp and
   * iter/udp walk the namespace of the task that creates it.
   */
  openIterator(program: string, netns?: string): number {
    const n = native();
    const link = n.bpf_program__attach_iter(this.program(program), null);
    if (isNull(link)) {
      const e = errno();
      throw new KernelError(`attach iterator ${this.name}:${program}`, e, hintFor(e));
    }
    const l = new Link(link, program);
    this.links.push(l);
    const fd = netns ? inNetns(netns, () => n.bpf_iter_create(l.fd)) : n.bpf_iter_create(l.fd);
    if (fd < 0) throw new KernelError(`create iterator ${this.name}:${program}`, -fd, hintFor(-fd));
    return fd;
  }

  get attachedCount(): number {
    return this.links.length;
  }

  /** Detach every program (reverse order); the object and its maps stay readable. */
  detach(): void {
    while (this.links.length) this.links.pop()!.destroy();
  }

  mapFd(name: string): number {
    return native().bpf_map__fd(this.map(name));
  }

  /** A map of the loaded object, to read and write from user space (its fd closes with the object). */
  hashMap(name: string): KernelMap {
    const n = native();
    const m = this.map(name);
    return new KernelMap({
      name, fd: n.bpf_map__fd(m), type: n.bpf_map__type(m), keySize: n.bpf_map__key_size(m),
      valueSize: n.bpf_map__value_size(m), maxEntries: n.bpf_map__max_entries(m),
    });
  }

  /** Read a global of .bss/.data through libbpf's live mapping of it (after load). */
  readGlobal(name: string): number {
    for (const section of ['.bss', '.data']) {
      const v = this.btf.variables(section).get(name);
      if (!v) continue;
      // libbpf 1.1 remaps .bss/.data onto the map only in skeletons: bpf_map__initial_value
      // is its private copy here, so read the map itself
      const n = native();
      const map = this.mapBySuffix(section);
      const value = Buffer.alloc(n.bpf_map__value_size(map));
      const rc = n.bpf_map_lookup_elem(n.bpf_map__fd(map), Buffer.alloc(4), value);
      if (rc < 0) throw new KernelError(`read ${this.name}:${name}`, errno());
      const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
      return v.size === 8 ? Number(dv.getBigUint64(v.offset, true)) : dv.getUint32(v.offset, true);
    }
    throw new Error(`${this.name}: no global "${name}"`);
  }

  /**
   * Write a 32-bit global that is alone in its own data section (bpf/include/filter.h's
   * .data.canary), so the write cannot race the programs' other globals. False when the
   * object has no such global (its programs do not read it).
   */
  writeGlobal(section: string, name: string, value: number): boolean {
    const v = this.btf.variables(section).get(name);
    if (!v) return false;
    const n = native();
    const map = this.mapBySuffix(section);
    const bytes = Buffer.alloc(n.bpf_map__value_size(map));
    bytes.writeUInt32LE(value >>> 0, v.offset);
    const rc = n.bpf_map_update_elem(n.bpf_map__fd(map), Buffer.alloc(4), bytes, 0);
    if (rc < 0) throw new KernelError(`write ${this.name}:${name}`, errno());
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.detach();
    native().bpf_object__close(this.ptr);
    this.closed = true;
  }

  private program(name: string): Pointer {
    const n = native();
    for (let p = n.bpf_object__next_program(this.ptr, null); !isNull(p); p = n.bpf_object__next_program(this.ptr, p)) {
      if (n.bpf_program__name(p) === name) return p;
    }
    throw new Error(`${this.name}: no program "${name}" (has: ${this.programs().map((p) => p.name).join(', ')})`);
  }

  private map(name: string): Pointer {
    const n = native();
    for (let m = n.bpf_object__next_map(this.ptr, null); !isNull(m); m = n.bpf_object__next_map(this.ptr, m)) {
      if (n.bpf_map__name(m) === name) return m;
    }
    throw new Error(`${this.name}: no map "${name}"`);
  }

  /** libbpf names data maps "<object prefix>.rodata"; find them by suffix. */
  private mapBySuffix(suffix: string): Pointer {
    const n = native();
    for (let m = n.bpf_object__next_map(this.ptr, null); !isNull(m); m = n.bpf_object__next_map(this.ptr, m)) {
      if (n.bpf_map__name(m).endsWith(suffix)) return m;
    }
    throw new Error(`${this.name}: no ${suffix} section`);
  }
}


function writeValue(bytes: Uint8Array, v: BtfVariable, value: ConstantValue, obj: string): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (typeof value === 'string') {
    const enc = Buffer.from(value, 'utf8');
    if (enc.length >= v.size) throw new Error(`${obj}: "${value}" is too long for ${v.name} (${v.size - 1} bytes at most)`);
    bytes.fill(0, v.offset, v.offset + v.size);
    bytes.set(enc, v.offset);
    return;
  }
  if (Array.isArray(value)) {
    const t = v.type;
    if (t.kind !== 'array' || t.elem.kind !== 'int') throw new Error(`${obj}: ${v.name} is not an integer array`);
    if (value.length > t.nelems) throw new Error(`${obj}: ${value.length} values do not fit ${v.name} (${t.nelems} at most)`);
    bytes.fill(0, v.offset, v.offset + v.size);
    value.forEach((x, i) => writeValue(bytes, { ...v, offset: v.offset + i * t.elem.size, size: t.elem.size, type: t.elem }, x, obj));
    return;
  }
  const n = typeof value === 'boolean' ? (value ? 1 : 0) : (value as number | bigint);
  switch (v.size) {
    case 1: dv.setUint8(v.offset, Number(n)); break;
    case 2: dv.setUint16(v.offset, Number(n), true); break;
    case 4: dv.setUint32(v.offset, Number(n) >>> 0, true); break;
    case 8: dv.setBigUint64(v.offset, BigInt.asUintN(64, BigInt(n)), true); break;
    default: throw new Error(`${obj}: cannot write a number into ${v.name} (${v.size} bytes)`);
  }
}
