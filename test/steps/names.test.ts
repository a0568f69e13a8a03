import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { generateNames, NAMES_DIR } from '../../scripts/gen-names.ts';
import { CAPABILITIES, ERRNO, flagNames, MOUNT_FLAGS, OPEN_FLAGS, SIGNALS } from '../../src/steps/names/index.ts';

describe('name tables', () => {
  test('known values', () => {
    assert.equal(SIGNALS[9], 'SIGKILL');
    assert.equal(SIGNALS[15], 'SIGTERM');
    assert.equal(SIGNALS[6], 'SIGABRT');
    assert.equal(SIGNALS[32], 'SIGRTMIN');
    assert.equal(SIGNALS[33], 'SIGRTMIN+1');
    assert.equal(SIGNALS[64], 'SIGRTMAX');
    assert.equal(Object.keys(SIGNALS).length, 64);
    assert.equal(CAPABILITIES[12], 'CAP_NET_ADMIN');
    assert.equal(CAPABILITIES[21], 'CAP_SYS_ADMIN');
    assert.equal(CAPABILITIES[40], 'CAP_CHECKPOINT_RESTORE');
    assert.equal(ERRNO[2], 'ENOENT');
    assert.equal(ERRNO[98], 'EADDRINUSE');
    assert.equal(ERRNO[11], 'EAGAIN');
    assert.equal(OPEN_FLAGS[0o100], 'O_CREAT');
    assert.equal(OPEN_FLAGS[0o2000000], 'O_CLOEXEC');
    assert.equal(MOUNT_FLAGS[1], 'MS_RDONLY');
    assert.equal(MOUNT_FLAGS[32768], 'MS_SILENT');
  });

  test('flagNames: ascending bits, unknown bits as hex', () => {
    assert.equal(flagNames(0o100 | 0o1000, OPEN_FLAGS), 'O_CREAT|O_TRUNC');
    assert.equal(flagNames(0x80000000 | 1, MOUNT_FLAGS), 'MS_RDONLY|MS_NOUSER');
    assert.equal(flagNames(0x800000000 % 2 ** 32 | 0x200, MOUNT_FLAGS), '0x200');
    assert.equal(flagNames(0, MOUNT_FLAGS), '');
    assert.equal(flagNames(0, { 0: 'NONE' }), 'NONE');
  });

  test('the committed tables are what scripts/gen-names.ts makes from the uapi headers', (t) => {
    if (!fs.existsSync('/usr/include/asm-generic/signal.h')) return t.skip('no uapi headers (apt-get install linux-libc-dev)');
    for (const [file, text] of generateNames()) {
      assert.equal(fs.readFileSync(path.join(NAMES_DIR, file), 'utf8'), text, `${file} differs: run node --import tsx scripts/gen-names.ts`);
    }
  });
});
