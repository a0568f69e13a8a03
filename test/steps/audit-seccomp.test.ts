import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { AuditMulticast } from '../../src/gadgets/audit/seccomp/netlink.ts';
import { AuditLoss, parseSeccompRecord, parseSeccompText, readSeccompRecords, SeqGaps, seccompAction, type SeccompAuditRecord } from '../../src/gadgets/audit/seccomp/kmsg.ts';
import { gadgets } from '../../src/steps/index.ts';
import type { GadgetDefinition } from '../../src/steps/types.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { kernelSkip } from '../helpers/kernel.ts';
import { cgroupDirOf, cgroupIdOf, freshCgroup, mntnsOf, run, type FreshCgroup } from '../helpers/proc.ts';
import { stepContext, traceWhile, uniqueToken } from '../helpers/session.ts';

// recorded on this machine from test/fixtures/seccomp_actions.c (log-flag)
const RECORDED = [
  '5,17407,6661342560,-;audit: type=1326 audit(1796143300.583:4): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=4978 comm="seccomp_actions" exe="/tmp/x/seccomp_actions" sig=0 arch=c000003e syscall=79 compat=0 ip=0x7fb07a552829 code=0x50000',
  '5,17408,6661342583,-;audit: type=1326 audit(1796143300.583:5): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=4978 comm="seccomp_actions" exe="/tmp/x/seccomp_actions" sig=0 arch=c000003e syscall=110 compat=0 ip=0x7fb07a552829 code=0x7ffc0000',
  '5,17409,6661342587,-;audit: type=1326 audit(1796143300.583:6): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=4978 comm="seccomp_actions" exe="/tmp/x/seccomp_actions" sig=31 arch=c000003e syscall=99 compat=0 ip=0x7fb07a552829 code=0x80000000',
];

test('seccomp audit records parse into pid, comm, syscall name and action', () => {
  assert.deepEqual(RECORDED.map(parseSeccompRecord).map((r) => [r!.pid, r!.comm, r!.syscall, r!.action, r!.sig]), [
    [4978, 'seccomp_actions', 'getcwd', 'errno', 0],
    [4978, 'seccomp_actions', 'getppid', 'log', 0],
    [4978, 'seccomp_actions', 'sysinfo', 'kill_process', 31],
  ]);
  assert.equal(parseSeccompRecord('6,1,2,-;audit: type=1400 apparmor="DENIED"'), undefined);
  assert.equal(parseSeccompRecord('5,1,2,-;audit: type=1326 pid=1 arch=40000003 syscall=20 code=0x30000')!.syscall, '20');
  assert.deepEqual([0, 0x30000, 0x7fc00000, 0x7ff00000, 0x5000d].map(seccompAction), ['kill_thread', 'trap', 'user_notif', 'trace', 'errno']);
});

describe('seccomp audit records in /dev/kmsg', { skip: process.getuid?.() !== 0 && 'needs root (reads /dev/kmsg)' }, () => {
  for (const [flag, expected] of [
    ['log-flag', [['getcwd', 'errno'], ['getppid', 'log'], ['sysinfo', 'kill_process']]],
    ['', [['getppid', 'log'], ['sysinfo', 'kill_process']]],
  ] as const) {
    test(`a filter with ERRNO, LOG and KILL_PROCESS rules${flag ? ' and SECCOMP_FILTER_FLAG_LOG' : ''}: ${expected.map(([s, a]) => `${a} ${s}`).join(', ')}`, async (t) => {
      const bin = compileFixture(t, 'seccomp_actions', ['-lseccomp']);
      let mine: SeccompAuditRecord[] = [];
      // without auditd the records go through printk_ratelimit(), shared with every ratelimited
      // message of the node (segfault lines of a neighbour's test): one more try once its window passed
      for (let attempt = 0; attempt < 3 && mine.length < expected.length; attempt++) {
        if (attempt) await new Promise((res) => setTimeout(res, 5500));
        const r = await run(bin, flag ? [flag] : []);
        assert.equal(r.stdout, 'getcwd -1 Permission denied\ngetppid ' + process.pid + '\n');
        assert.equal(r.code, null, 'killed by SIGSYS');
        // this run's records: its pid and its binary (in a fresh temp dir) make them unique
        mine = readSeccompRecords().filter((x) => x.pid === r.pid && x.exe === path.resolve(bin));
      }
      assert.deepEqual(mine.map((x) => [x.syscall, x.action]), expected);
      assert.ok(mine.every((x) => x.comm === 'seccomp_actions'));
    });
  }
});

// ---------------------------------------------------------------------------
// the gadget, on real filters

const def: GadgetDefinition = gadgets['audit/seccomp'];
const [NR_GETCWD, NR_GETPPID, NR_SYSINFO] = [79, 110, 99];
const EACCES = 13;
const ORDER = ['getcwd', 'getppid', 'sysinfo'];

/** One fixture run under the gadget: its events (timestamps checked, then left out), ordered as the program made them. */
async function traceRun(t: TestContext, bin: string, args: string[], opts: { filter?: string; cgroup?: FreshCgroup; outside?: boolean; audit?: string } = {}) {
  const ctx = stepContext(t, {
    filter: opts.filter ?? 'comm==seccomp_actions', cgroup: opts.cgroup && { id: opts.cgroup.id, level: opts.cgroup.level },
    params: opts.audit ? { audit: opts.audit } : {},
  });
  let pid = 0;
  let other = 0;
  // the audit multicast group sees every record (no printk ratelimit): what the wait below watches
  const audit = new AuditMulticast();
  try {
    const { outcome, events } = await traceWhile(def, ctx, async () => {
      // inside the workload cgroup when there is one; with `outside`, a second run that is not
      const r = opts.cgroup
        ? await run('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'sh', opts.cgroup.dir, bin, ...args])
        : await run(bin, args);
      pid = r.pid;
      if (opts.outside) other = (await run(bin, args)).pid;
      // the audit records come from kauditd, after the process died: wait for them (or give up after 2 s)
      const want = new Set([pid, other].filter(Boolean));
      for (let waited = 0; waited < 2000 && want.size; waited += 20) {
        audit.read((type, text) => {
          const rec = type === 1326 ? parseSeccompText(text) : undefined;
          if (rec?.syscall === 'sysinfo') want.delete(rec.pid);
        });
        if (want.size) await new Promise((res) => setTimeout(res, 20));
      }
    });
    assert.equal(outcome.events, events.length);
    const mine = events.filter((e) => e.pid === pid).map(({ timestamp, ...rest }) => {
      assert.match(timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      return rest;
    });
    mine.sort((a, b) => ORDER.indexOf(a.syscall as string) - ORDER.indexOf(b.syscall as string));
    return { pid, other, events, mine, outcome };
  } finally {
    audit.close();
  }
}

/** Retry while the audit records were ratelimited away (printk_ratelimit: 10 per 5 s, node-wide; /dev/kmsg only). */
async function traceUntil(t: TestContext, expectedCount: number, attempt: () => ReturnType<typeof traceRun>) {
  let got = await attempt();
  for (let i = 0; i < 3 && got.mine.length < expectedCount; i++) {
    t.diagnostic(`attempt ${i + 1}: ${got.mine.length} of ${expectedCount} events; again once the ratelimit window passed`);
    await new Promise((res) => setTimeout(res, 5500));
    got = await attempt();
  }
  return got;
}

function event(pid: number, e: Record<string, unknown>, cgroupId = Number(cgroupIdOf(cgroupDirOf(process.pid)))) {
  const base = { pid, tid: pid, comm: 'seccomp_actions', arch: 'x86_64', ret: 0, err: 0, err_name: '', uid: 0, gid: 0, mntns_id: mntnsOf(process.pid), cgroup_id: cgroupId };
  const full: Record<string, unknown> = { ...base, ...e };
  return Object.fromEntries(def.fields.filter((f) => f.name !== 'timestamp').map((f) => [f.name, full[f.name]]));
}

const errnoGetcwd = { action: 'errno', syscall_nr: NR_GETCWD, syscall: 'getcwd', ret: -EACCES, err: EACCES, err_name: 'EACCES', source: 'exit_without_enter' };
const logGetppid = { action: 'log', syscall_nr: NR_GETPPID, syscall: 'getppid', source: 'audit', tid: 0 };
const killSysinfo = { action: 'kill_process', syscall_nr: NR_SYSINFO, syscall: 'sysinfo', source: 'sigsys' };

describe('audit/seccomp', { skip: kernelSkip(def) }, () => {
  for (const audit of ['auto', 'kmsg']) {
    for (const flag of ['', 'log-flag']) {
      test(`audit records from ${audit === 'auto' ? 'the audit netlink socket' : '/dev/kmsg'}: errno getcwd, log getppid, kill_process sysinfo${flag ? ' (SECCOMP_FILTER_FLAG_LOG: the errno is in the audit log too, reported once)' : ''}: three events, exact`, async (t) => {
        const bin = compileFixture(t, 'seccomp_actions', ['-lseccomp']);
        const { pid, mine, outcome } = await traceUntil(t, 3, () => traceRun(t, bin, flag ? [flag] : [], { audit }));
        assert.deepEqual(mine, [event(pid, errnoGetcwd), event(pid, logGetppid), event(pid, killSysinfo)]);
        // netlink has no ratelimit to warn of; kmsg always says its log events may be missing unannounced
        if (audit === 'auto') assert.deepEqual(outcome.warnings, []);
        else assert.ok(outcome.warnings.some((w) => w.includes('printk_ratelimit()')), outcome.warnings.join('\n'));
      });
    }
  }

  test('audit: none — the BPF hooks alone: errno and kill_process, no log', async (t) => {
    const bin = compileFixture(t, 'seccomp_actions', ['-lseccomp']);
    const { pid, mine, outcome } = await traceRun(t, bin, ['log-flag'], { audit: 'none' });
    assert.deepEqual(mine, [event(pid, errnoGetcwd), event(pid, killSysinfo)]);
    assert.equal(outcome.lost, 0);
  });

  test('trap: each SIGSYS once (its skipped exit and its audit record are the same action), the process goes on', async (t) => {
    const bin = compileFixture(t, 'seccomp_actions', ['-lseccomp']);
    const { pid, mine } = await traceUntil(t, 4, () => traceRun(t, bin, ['trap', 'log-flag', '2']));
    const trap = { action: 'trap', syscall_nr: NR_GETCWD, syscall: 'getcwd', source: 'sigsys' };
    assert.deepEqual(mine, [event(pid, trap), event(pid, trap), event(pid, logGetppid), event(pid, logGetppid), event(pid, killSysinfo)]);
  });

  test('kill_thread of one thread among several: only the audit record sees it (no SIGSYS), tid 0', async (t) => {
    const bin = compileFixture(t, 'seccomp_actions', ['-lseccomp', '-pthread']);
    const { pid, mine } = await traceUntil(t, 3, () => traceRun(t, bin, ['kill-thread']));
    assert.deepEqual(mine, [event(pid, errnoGetcwd), event(pid, logGetppid), event(pid, { action: 'kill_thread', syscall_nr: NR_SYSINFO, syscall: 'sysinfo', source: 'audit', tid: 0 })]);
  });

  test('filters: action==log sees the log event only; a comm no process has sees nothing', async (t) => {
    const bin = compileFixture(t, 'seccomp_actions', ['-lseccomp']);
    const { pid, mine } = await traceUntil(t, 1, () => traceRun(t, bin, [], { filter: 'comm==seccomp_actions,action==log' }));
    assert.deepEqual(mine, [event(pid, logGetppid)]);
    const none = await traceRun(t, bin, [], { filter: 'comm==no_such_comm' });
    assert.deepEqual(none.events, []);
  });

  test('a workload cgroup: a seccomp child inside is seen (its audit record with the cgroup), one outside is not', async (t) => {
    const bin = compileFixture(t, 'seccomp_actions', ['-lseccomp']);
    const cg = freshCgroup(t, uniqueToken('cg'));
    const { pid, other, events, mine } = await traceUntil(t, 3, () => traceRun(t, bin, [], { filter: '', cgroup: cg, outside: true }));
    assert.deepEqual(mine, [event(pid, errnoGetcwd, Number(cg.id)), event(pid, logGetppid, Number(cg.id)), event(pid, killSysinfo, Number(cg.id))]);
    assert.ok(other > 0);
    assert.deepEqual(events.filter((e) => e.pid === other), []);
  });
});

// ---------------------------------------------------------------------------
// the kernel log's parsers, on any input

/** A type=1326 record line as the kernel prints it (kernel/auditsc.c audit_seccomp, audit_log_task). */
function recordLine(seq: number, r: { pid: number; uid: number; gid: number; comm: string; nr: number; code: number; sig: number; ms: number }): string {
  const untrusted = /[\s"\x00-\x1f\x7f-\xff]/.test(r.comm) || r.comm === '';
  const comm = untrusted ? Buffer.from(r.comm, 'utf8').toString('hex').toUpperCase() : `"${r.comm}"`;
  const stamp = `${Math.floor(r.ms / 1000)}.${String(r.ms % 1000).padStart(3, '0')}:${seq}`;
  return `5,${seq},123,-;audit: type=1326 audit(${stamp}): auid=4294967295 uid=${r.uid} gid=${r.gid} ses=4294967295 pid=${r.pid} comm=${comm} exe="/x" sig=${r.sig} arch=c000003e syscall=${r.nr} compat=0 ip=0x7f00 code=0x${r.code.toString(16)}`;
}

test('any seccomp record line parses back to what the kernel wrote; any other line is not a record', () => {
  const rec = fc.record({
    pid: fc.integer({ min: 1, max: 4194304 }), uid: fc.nat(), gid: fc.nat(),
    comm: fc.string({ minLength: 1, maxLength: 15 }).filter((c) => !c.includes('\0')),
    nr: fc.integer({ min: 0, max: 600 }), code: fc.constantFrom(0, 0x80000000, 0x30000, 0x50000, 0x5000d, 0x7fc00000, 0x7ff00000, 0x7ffc0000),
    sig: fc.constantFrom(0, 31), ms: fc.integer({ min: 0, max: 2 ** 42 }),
  });
  fc.assert(fc.property(fc.nat(), rec, (seq, r) => {
    const p = parseSeccompRecord(recordLine(seq, r))!;
    assert.deepEqual([p.pid, p.uid, p.gid, p.comm, p.syscall_nr, p.action, p.sig, p.wallMs], [r.pid, r.uid, r.gid, r.comm, r.nr, seccompAction(r.code), r.sig, r.ms]);
  }));
  fc.assert(fc.property(fc.string(), (s) => {
    const p = parseSeccompRecord(s);
    assert.equal(p === undefined, !s.slice(s.indexOf(';') + 1).startsWith('audit: type=1326 '));
  }));
});

test('kernel log loss signs: kauditd suppressed counts, rate/backlog limits and audit_lost growth are lost; other suppressions only shared', () => {
  const l = new AuditLoss();
  assert.equal(l.take('4,1,2,-;kauditd_printk_skb: 7 callbacks suppressed'), true);
  assert.equal(l.take('4,2,3,-;show_signal_msg: 3 callbacks suppressed'), true);
  assert.equal(l.take('4,3,4,-;audit: audit_lost=10 audit_rate_limit=0 audit_backlog_limit=64'), true);
  assert.equal(l.take('3,4,5,-;audit: backlog limit exceeded'), true);
  assert.equal(l.take('4,5,6,-;audit: audit_lost=15 audit_rate_limit=0 audit_backlog_limit=64'), true);
  assert.equal(l.take('5,6,7,-;audit: type=1326 audit(1.000:1): pid=1'), false);
  // 7 suppressed + 1 limit line + (15 - 10 - 1) grown beyond it
  assert.deepEqual([l.lost, l.sharedSuppressed], [12, 3]);
  fc.assert(fc.property(fc.array(fc.oneof(fc.string(), fc.nat().map((n) => `4,1,1,-;kauditd_printk_skb: ${n} callbacks suppressed`))), (lines) => {
    const loss = new AuditLoss();
    let suppressed = 0;
    for (const line of lines) {
      loss.take(line);
      const m = /^4,1,1,-;kauditd_printk_skb: (\d+) callbacks suppressed/.exec(line);
      if (m) suppressed += Number(m[1]);
    }
    assert.ok(loss.lost >= suppressed && Number.isSafeInteger(loss.lost));
  }));
});

test('kernel log sequence gaps: every record between two read is missed; an overrun before any record counts one', () => {
  fc.assert(fc.property(fc.nat({ max: 1e9 }), fc.array(fc.nat({ max: 1000 })), (first, gaps) => {
    const g = new SeqGaps();
    let seq = first;
    g.see(seq);
    for (const gap of gaps) g.see((seq += gap + 1));
    assert.equal(g.missed, gaps.reduce((a, b) => a + b, 0));
  }));
  const g = new SeqGaps();
  g.overrun();
  g.see(40);
  g.overrun();
  g.see(45);
  assert.equal(g.missed, 1 + 4);
});
