import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileOffsetToVaddr, readElfSymbols } from '../../src/ebpf/elf.ts';
import { onlineCpus } from '../../src/ebpf/perf.ts';
import { kernelAddress, loadKallsyms, SymbolTable } from '../../src/ebpf/stacks.ts';
import { parseMaps, readPerfMap } from '../../src/ebpf/symbolizer.ts';
import { compileFixture } from '../helpers/fixture.ts';
import { tempDir } from '../helpers/session.ts';

describe('symbols (no root)', () => {
  test('SymbolTable: the last symbol at or below the address, within its size', () => {
    const t = new SymbolTable([{ start: 200, end: 210, name: 'b' }, { start: 100, name: 'a' }]);
    assert.equal(t.find(99), undefined);
    assert.equal(t.find(100), 'a');
    assert.equal(t.find(199), 'a');
    assert.equal(t.find(205), 'b');
    assert.equal(t.find(210), undefined, 'past b\'s size');
  });

  test('kallsyms: text symbols only, module names cut, full 64-bit addresses kept exact', (t) => {
    const file = path.join(tempDir(t), 'kallsyms');
    fs.writeFileSync(file, [
      'ffffffff81000000 T _stext',
      'ffffffff81000010 t helper_fn',
      'ffffffff82000000 D some_data',
      'ffffffffc0001000 t mod_fn\t[loop]',
      '0000000000000000 T hidden', // kptr_restrict: addresses read 0
    ].join('\n') + '\n');
    const k = loadKallsyms(file);
    assert.equal(k.size, 3);
    assert.equal(k.find(kernelAddress(0xffffffff8100000fn)), '_stext');
    assert.equal(k.find(kernelAddress(0xffffffff81000011n)), 'helper_fn');
    assert.equal(k.find(kernelAddress(0xffffffffc0001004n)), 'mod_fn');
  });

  test('/proc/PID/maps: executable mappings, deleted files by their path', () => {
    const maps = parseMaps([
      '55d0c0000000-55d0c0001000 r--p 00000000 08:01 1234 /usr/bin/x',
      '55d0c0001000-55d0c0005000 r-xp 00001000 08:01 1234 /usr/bin/x',
      '7f0000000000-7f0000100000 r-xp 00000000 00:00 0 ',
      '7f1000000000-7f1000001000 r-xp 00002000 08:01 99 /tmp/lib.so (deleted)',
      '7ffd000000-7ffd001000 r-xp 00000000 00:00 0 [vdso]',
    ].join('\n'));
    assert.deepEqual(maps.map((m) => [m.start.toString(16), m.offset, m.path]), [
      ['55d0c0001000', 0x1000, '/usr/bin/x'], ['7f0000000000', 0, ''], ['7f1000000000', 0x2000, '/tmp/lib.so'], ['7ffd000000', 0, '[vdso]'],
    ]);
  });

  test('perf maps: "START SIZE name" in hex, names with spaces', (t) => {
    const file = path.join(tempDir(t), 'perf-1.map');
    fs.writeFileSync(file, '3e9a1000 40 JS:*hot /app/x.js:1:10\n3e9a2000 8 Builtin:Foo\n');
    const m = readPerfMap(file)!;
    assert.equal(m.find(0x3e9a1010), 'JS:*hot /app/x.js:1:10');
    assert.equal(m.find(0x3e9a1040), undefined);
    assert.equal(readPerfMap(path.join(tempDir(t), 'none.map')), null);
  });

  test('ELF: a compiled function found from an address inside it, as llvm-nm places it', (t) => {
    const bin = compileFixture(t, 'hot_loop', ['-g', '-fno-omit-frame-pointer']);
    const elf = readElfSymbols(bin);
    assert.equal(elf.source, '.symtab');
    assert.match(elf.buildId ?? '', /^[0-9a-f]{40}$/);
    const line = execFileSync('llvm-nm', [bin]).toString().split('\n').find((l) => l.endsWith(' gadget_hot_loop'));
    assert.ok(line, 'llvm-nm lists gadget_hot_loop');
    const addr = parseInt(line.split(' ')[0], 16);
    assert.equal(elf.symbols.find(addr + 4), 'gadget_hot_loop');
    // a file offset maps to its address through the PT_LOAD segment holding it
    assert.equal(fileOffsetToVaddr({ ...elf, segments: [{ offset: 0x1000, vaddr: 0x401000, size: 0x100 }] }, 0x1010), 0x401010);
  });

  test('online CPUs from the sysfs list syntax', () => {
    assert.deepEqual(onlineCpus('0-1,4,6-7\n'), [0, 1, 4, 6, 7]);
    assert.deepEqual(onlineCpus('0\n'), [0]);
  });
});
