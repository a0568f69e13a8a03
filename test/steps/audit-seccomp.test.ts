import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseSeccompRecord, readSeccompRecords, seccompAction, type SeccompAuditRecord } from '../../src/steps/audit/seccomp-kmsg.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { run } from '../helpers/proc.ts';

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
