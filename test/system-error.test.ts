/** Node's system errors described from their fields (code, errno), never by rewriting their message. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { describeSystemError } from '../src/system-error.ts';

test('a system error: libuv\'s words and the code, without the call and path Node repeats', () => {
  const missing = path.join(os.tmpdir(), `gadget-run-nothing-${process.pid}`, 'x');
  let err: unknown;
  try {
    fs.readFileSync(missing);
  } catch (e) {
    err = e;
  }
  assert.equal(describeSystemError(err), 'no such file or directory (ENOENT)');
  try {
    fs.mkdirSync('/proc/gadget-run-cannot');
  } catch (e) {
    assert.doesNotMatch(describeSystemError(e), /mkdir|\/proc/);
    assert.match(describeSystemError(e), /\((ENOENT|EACCES|EPERM)\)$/);
  }
});

test('an errno libuv has no words for is its code; anything else, its message', () => {
  const edquot = Object.assign(new Error("EDQUOT: disk quota exceeded, write"), { code: 'EDQUOT', errno: -os.constants.errno.EDQUOT, syscall: 'write' });
  assert.equal(describeSystemError(edquot), 'EDQUOT');
  assert.equal(describeSystemError(new Error('plain')), 'plain');
});
