/**
 * Reasons are data until the edge: every kind has its three parts, the one
 * formatter makes the line, and libbpf's log is read into the lines that say
 * why (no root needed: the logs are fixtures of what libbpf 1.1 prints).
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import { loadFailureOf } from '../../src/ebpf/log.ts';
import { describeReason, explain, unsupportedMessage, type Reason } from '../../src/ebpf/reasons.ts';

const { EINVAL, EACCES, EPERM, ENOENT } = os.constants.errno;

test('every kind of reason explains itself: what is needed, why not, and (mostly) what to do', () => {
  const all: Reason[] = [
    { kind: 'not-root', uid: 1000 },
    { kind: 'no-btf', path: '/sys/kernel/btf/vmlinux', release: '6.1.0-57-amd64' },
    { kind: 'no-btf', path: '/sys/kernel/btf/vmlinux', release: '6.1.0-57-amd64', dirs: [{ dir: '/opt/btf', why: 'other-build', detail: 'made from build aa, this kernel is bb' }] },
    { kind: 'bad-btf', file: '/tmp/x.btf', from: '--btf', error: 'neither raw BTF nor an ELF file' },
    { kind: 'kernel-btf', object: 'x.bpf.o', hooks: ['tp_btf/signal_generate'], ksyms: [] },
    { kind: 'kernel-btf', object: 'x.bpf.o', hooks: [], ksyms: ['bpf_cast_to_kern_ctx'] },
    { kind: 'kernel-btf', hooks: ['fentry/cap_capable'], ksyms: [] },
    { kind: 'btfgen-object', object: 'x.bpf.o', dir: '/opt/btf' },
    { kind: 'no-libbpf', error: 'Failed to load shared library: libbpf.so.1: cannot open shared object file' },
    { kind: 'old-libbpf', version: '0.8' },
    { kind: 'no-ringbuf' },
    { kind: 'no-tracefs', path: '/sys/kernel/tracing' },
    { kind: 'no-tracefs', path: '/sys/kernel/tracing', mountError: 'mount: permission denied' },
    { kind: 'tracepoint', name: 'oom/mark_victim' },
    { kind: 'no-tracepoint', names: ['a/b', 'c/d'] },
    { kind: 'iterator', target: 'tcp' },
    { kind: 'prog-type', type: 8 },
    { kind: 'prog-type', type: 99 },
    { kind: 'perf-event', event: 'cpu-clock', errno: EACCES },
    { kind: 'mode', mode: 'advise' },
    { kind: 'no-object', object: 'x.bpf.o', dir: '/opt/objects' },
    { kind: 'load', object: 'x.bpf.o', errno: EINVAL, verifier: false, detail: ['a'] },
  ];
  for (const r of all) {
    const e = explain(r);
    assert.ok(e.hook && e.reason, `${r.kind}: ${JSON.stringify(e)}`);
    assert.equal(describeReason(r), `needs ${e.hook}: ${e.reason}${e.hint ? `; ${e.hint}` : ''}`);
    assert.doesNotMatch(describeReason(r), /undefined|\[object/, r.kind);
  }
});

test('the one line: gadget, unsupported, hook, reason, hint', () => {
  assert.equal(
    unsupportedMessage('trace/oomkill', { kind: 'tracepoint', name: 'oom/mark_victim' }),
    'trace/oomkill: unsupported here — needs tracepoint oom/mark_victim: this kernel does not have it',
  );
  assert.equal(
    unsupportedMessage('trace/exec', { kind: 'not-root', uid: 65534 }),
    'trace/exec: unsupported here — needs root: running as uid 65534; run with sudo (or with CAP_BPF+CAP_PERFMON+CAP_SYS_ADMIN)',
  );
  assert.equal(
    unsupportedMessage('trace/dns', {
      kind: 'load', object: 'trace_dns.bpf.o', errno: EINVAL, verifier: false, program: 'dns_egress',
      detail: ["extern (func ksym) 'bpf_cast_to_kern_ctx': not found in kernel or module BTFs"], log: '/var/cache/gadget-run/probes/k/o.log',
    }),
    "trace/dns: unsupported here — needs its object trace_dns.bpf.o to load: extern (func ksym) 'bpf_cast_to_kern_ctx': not found in kernel or module BTFs; " +
      'libbpf refused it on this kernel (EINVAL); full log in /var/cache/gadget-run/probes/k/o.log',
  );
  assert.equal(
    explain({ kind: 'load', object: 'o.bpf.o', errno: EACCES, verifier: true, program: 'p', detail: ['program p: R0 invalid mem access'] }).hint,
    'the verifier rejected it on this kernel (EACCES)',
  );
  // a load that failed without a word from libbpf still says something
  assert.equal(explain({ kind: 'load', object: 'o.bpf.o', errno: EPERM, verifier: false, detail: [] }).reason, 'EPERM (operation not permitted)');
  assert.equal(explain({ kind: 'perf-event', event: 'cpu-clock', errno: ENOENT }).hint, 'BPF on perf events needs Linux 4.9+');
});

const VERIFIER_LOG = `libbpf: prog 'count_getppid': BPF program load failed: Permission denied
libbpf: prog 'count_getppid': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
6: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=counts,ks=4,vs=8)
7: (79) r1 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'count_getppid': failed to load: -13
libbpf: failed to load object '/tmp/verifier_reject.bpf.o'
`;

test('a verifier log: the program and the verifier\'s last complaint before its statistics', () => {
  const f = loadFailureOf(VERIFIER_LOG);
  assert.equal(f.program, 'count_getppid');
  assert.equal(f.verifier, true);
  assert.deepEqual(f.detail, ["program count_getppid: R0 invalid mem access 'map_value_or_null'"]);
  assert.equal(f.tail.length, 8);
  assert.equal(f.tail.at(-1), "libbpf: failed to load object '/tmp/verifier_reject.bpf.o'");
});

test('libbpf\'s own refusal: its warnings, without the bookkeeping around them', () => {
  // Linux 6.1 and trace/dns, as issue 15 measured it
  const ksym = loadFailureOf(
    "libbpf: extern (func ksym) 'bpf_cast_to_kern_ctx': not found in kernel or module BTFs\nlibbpf: failed to load object 'trace_dns_bpf'\n",
  );
  assert.deepEqual(ksym, {
    verifier: false,
    detail: ["extern (func ksym) 'bpf_cast_to_kern_ctx': not found in kernel or module BTFs"],
    tail: ["libbpf: extern (func ksym) 'bpf_cast_to_kern_ctx': not found in kernel or module BTFs", "libbpf: failed to load object 'trace_dns_bpf'"],
  });
  // Linux 6.1 and trace/oomkill: libbpf said nothing but the errno; that is what there is
  const bare = loadFailureOf("libbpf: prog 'mark_victim': failed to load: -22\nlibbpf: failed to load object 'trace_oomkill_bpf'\n");
  assert.equal(bare.program, 'mark_victim');
  assert.deepEqual(bare.detail, ["prog 'mark_victim': failed to load: -22"]);
  // a verifier log cut short (no END line) still yields its last line
  assert.deepEqual(loadFailureOf("libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n0: R1=ctx()\nR1 type=ctx expected=fp\n").detail, ['program p: R1 type=ctx expected=fp']);
  // and very long lines are clipped
  assert.ok(loadFailureOf(`libbpf: ${'x'.repeat(5000)}\n`).detail[0].length < 400);
});
