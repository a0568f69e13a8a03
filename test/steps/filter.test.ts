import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { kernelFiltersExcept, TASK_KERNEL_FILTERS } from '../../src/gadgets/common-fields.ts';
import {
  checkFilter, compileFilter, FilterError, formatFilter, parseFilter, splitFilter,
  type FilterField, type FilterOp, type Predicate,
} from '../../src/steps/filter.ts';
import { MOUNT_FLAGS, SIGNALS } from '../../src/steps/names/index.ts';
import type { FieldType } from '../../src/steps/types.ts';

const typed = (list: [string, FieldType][]): FilterField[] => list.map(([name, type]) => ({ name, type }));
const fields = typed([
  ['pid', 'number'], ['tid', 'number'], ['uid', 'number'], ['gid', 'number'], ['mntns_id', 'number'],
  ['comm', 'string'], ['path', 'string'], ['args', 'string[]'], ['args_truncated', 'boolean'], ['ret', 'number'],
]);
const TASK = { fields, kernelFilters: TASK_KERNEL_FILTERS };

function parseError(text: string): FilterError {
  try {
    parseFilter(text);
  } catch (err) {
    assert.ok(err instanceof FilterError, `expected a FilterError, got ${err}`);
    return err;
  }
  assert.fail(`parseFilter(${JSON.stringify(text)}) did not throw`);
}

describe('parseFilter', () => {
  test('every operator', () => {
    const ops = ['==', '!=', '>=', '>', '<=', '<', '~', '!~'] as const;
    for (const op of ops) {
      assert.deepEqual(parseFilter(`pid${op}42`), [{ field: 'pid', op, value: '42', column: 0 }], op);
    }
  });

  test('`=` is accepted as `==`', () => {
    assert.deepEqual(parseFilter('comm=bash'), [{ field: 'comm', op: '==', value: 'bash', column: 0 }]);
  });

  test('a comma joins predicates, each with its column', () => {
    assert.deepEqual(parseFilter('pid==1,comm!=sh,ret<0'), [
      { field: 'pid', op: '==', value: '1', column: 0 },
      { field: 'comm', op: '!=', value: 'sh', column: 7 },
      { field: 'ret', op: '<', value: '0', column: 16 },
    ]);
  });

  test('blanks around field, operator and value are dropped', () => {
    assert.deepEqual(parseFilter(' comm == bash , pid>=3'), [
      { field: 'comm', op: '==', value: 'bash', column: 0 },
      { field: 'pid', op: '>=', value: '3', column: 15 },
    ]);
  });

  test('`\\,` is a comma inside a value, and other backslashes stay', () => {
    assert.deepEqual(parseFilter('path~a\\,b,pid==1'), [
      { field: 'path', op: '~', value: 'a,b', column: 0 },
      { field: 'pid', op: '==', value: '1', column: 10 },
    ]);
    assert.deepEqual(parseFilter('path~^/tmp/\\d+$'), [{ field: 'path', op: '~', value: '^/tmp/\\d+$', column: 0 }]);
  });

  test('the first operator wins, so values may hold operator characters', () => {
    assert.deepEqual(parseFilter('path~a==b'), [{ field: 'path', op: '~', value: 'a==b', column: 0 }]);
    assert.deepEqual(parseFilter('comm!~^(a|b)$'), [{ field: 'comm', op: '!~', value: '^(a|b)$', column: 0 }]);
  });

  test('an empty filter is no predicate', () => {
    assert.deepEqual(parseFilter(''), []);
  });

  test('an empty predicate is an error at its column', () => {
    for (const [text, column] of [['pid==1,,uid==0', 7], ['pid==1,', 7], [',pid==1', 0], ['pid==1, ,uid==0', 7]] as const) {
      const err = parseError(text);
      assert.equal(err.column, column, text);
      assert.match(err.message, /empty predicate/, text);
    }
  });

  test('a missing operator is an error after the field name', () => {
    const err = parseError('pid==1,comm bash');
    assert.equal(err.column, 12);
    assert.match(err.message, /expected an operator after "comm"/);
  });

  test('a predicate must start with a field name', () => {
    const err = parseError('pid==1,==3');
    assert.equal(err.column, 7);
    assert.match(err.message, /does not start with a field name/);
  });
});

describe('checkFilter', () => {
  test('a valid filter has no problem', () => {
    assert.equal(checkFilter(parseFilter('pid==1,comm~^ba,args_truncated==true,ret<0,pid~^1'), fields), undefined);
  });

  test('an unknown field lists the known ones', () => {
    const err = checkFilter(parseFilter('pid==1,pidd==3'), fields);
    assert.ok(err);
    assert.equal(err.column, 7);
    assert.equal(err.message, `unknown field "pidd" (did you mean pid? known: ${fields.map((f) => f.name).join(', ')})`);
  });

  test('number fields take numbers only', () => {
    for (const text of ['pid==abc', 'pid==', 'ret>=1x', 'uid<NaN']) {
      const err = checkFilter(parseFilter(text), fields);
      assert.ok(err, text);
      assert.match(err.message, /is a number; ".*" is not/, text);
    }
  });

  test('boolean fields take true or false', () => {
    const err = checkFilter(parseFilter('args_truncated==yes'), fields);
    assert.ok(err);
    assert.match(err.message, /true or false; "yes" is neither/);
  });

  test('a bad regular expression is named', () => {
    const err = checkFilter(parseFilter('pid==1,comm~(unclosed'), fields);
    assert.ok(err);
    assert.equal(err.column, 7);
    assert.match(err.message, /^comm~\(unclosed: invalid regular expression/);
  });
});

describe('splitFilter', () => {
  test('== on pid, tid, uid, gid, comm, mntns_id becomes BPF constants', () => {
    const { constants, user } = splitFilter(
      parseFilter('pid==10,tid==11,uid==1000,gid==100,comm==bash,mntns_id==4026531840'), TASK);
    assert.deepEqual(constants, {
      targ_tgid: 10, targ_tid: 11, targ_uid: 1000, targ_gid: 100, targ_comm: 'bash', targ_mntns_id: 4026531840,
    });
    assert.deepEqual(user, []);
  });

  test('only for fields the gadget filters in the kernel', () => {
    const { constants, user } = splitFilter(parseFilter('pid==10,comm==bash'), { fields, kernelFilters: { pid: TASK_KERNEL_FILTERS.pid } });
    assert.deepEqual(constants, { targ_tgid: 10 });
    assert.deepEqual(user.map((p) => p.field), ['comm']);
  });

  test('a comm of 16 bytes or more stays in user space', () => {
    assert.deepEqual(splitFilter(parseFilter('comm==abcdefghijklmnop'), TASK).constants, {});
    assert.deepEqual(splitFilter(parseFilter('comm==abcdefghijklmno'), TASK).constants, { targ_comm: 'abcdefghijklmno' });
    // bytes, not characters: 8 × "é" is 16 bytes
    const { constants, user } = splitFilter(parseFilter('comm==éééééééé'), TASK);
    assert.deepEqual(constants, {});
    assert.equal(user.length, 1);
  });

  test('a second predicate on the same field stays in user space', () => {
    const { constants, user } = splitFilter(parseFilter('pid==1,pid==2'), TASK);
    assert.deepEqual(constants, { targ_tgid: 1 });
    assert.deepEqual(user, [{ field: 'pid', op: '==', value: '2', column: 7 }]);
  });

  test('other operators and fields stay in user space', () => {
    const preds = parseFilter('pid!=1,uid>=1000,comm~^ba,path==/etc/passwd,ret<0');
    const { constants, user } = splitFilter(preds, TASK);
    assert.deepEqual(constants, {});
    assert.deepEqual(user, preds);
  });

  test('values the kernel reads as "no filter" or cannot hold stay in user space', () => {
    // targ_tgid 0, targ_uid (u32)-1 mean "no filter" in bpf/include/filter.h, and the
    // constants are __u32: pushing these would let every event through instead of none
    for (const text of ['pid==0', 'tid==0', 'mntns_id==0', 'uid==4294967295', 'gid==-1', 'pid==1.5', 'pid==4294967297']) {
      const { constants, user } = splitFilter(parseFilter(text), TASK);
      assert.deepEqual(constants, {}, `${text} was pushed into the kernel as ${JSON.stringify(constants)}`);
      assert.equal(user.length, 1, text);
    }
  });
});

describe('compileFilter', () => {
  type Values = { pid: number; comm: string; args: string[]; args_truncated: boolean; ret: number; path: string };
  const sample: Values = { pid: 1234, comm: 'bash', args: ['/bin/ls', '-l', 'a b'], args_truncated: false, ret: -2, path: '/etc/passwd' };

  function evaluate(text: string, v: Values = sample): boolean {
    const preds: Predicate[] = parseFilter(text);
    assert.equal(checkFilter(preds, fields), undefined, text);
    const { source, regexes } = compileFilter(preds, fields, (f) => `v_${f}`);
    const names = Object.keys(v).map((k) => `v_${k}`);
    return new Function('R', ...names, `return ${source};`)(regexes, ...Object.values(v)) as boolean;
  }

  test('numbers compare as numbers', () => {
    assert.equal(evaluate('pid==1234'), true);
    assert.equal(evaluate('pid==1235'), false);
    assert.equal(evaluate('pid!=1234'), false);
    assert.equal(evaluate('pid>=1234'), true);
    assert.equal(evaluate('pid>1234'), false);
    assert.equal(evaluate('pid<=1233'), false);
    assert.equal(evaluate('pid<10000'), true);
    assert.equal(evaluate('ret<0'), true);
    assert.equal(evaluate('ret==-2'), true);
  });

  test('strings compare exactly, regexes search', () => {
    assert.equal(evaluate('comm==bash'), true);
    assert.equal(evaluate('comm==bas'), false);
    assert.equal(evaluate('comm!=bash'), false);
    assert.equal(evaluate('comm~^ba'), true);
    assert.equal(evaluate('comm~sh$'), true);
    assert.equal(evaluate('comm!~^ba'), false);
    assert.equal(evaluate('path~^/etc/'), true);
  });

  test('a regex on a number field tests its decimal text', () => {
    assert.equal(evaluate('pid~^12'), true);
    assert.equal(evaluate('pid~^2'), false);
  });

  test('string lists match on their space-joined text', () => {
    assert.equal(evaluate('args~-l a b$'), true);
    assert.equal(evaluate('args==/bin/ls -l a b'), true);
    assert.equal(evaluate('args!~^/usr'), true);
  });

  test('booleans compare with true and false', () => {
    assert.equal(evaluate('args_truncated==false'), true);
    assert.equal(evaluate('args_truncated==true'), false);
  });

  test('a comma is AND', () => {
    assert.equal(evaluate('pid==1234,comm==bash'), true);
    assert.equal(evaluate('pid==1234,comm==zsh'), false);
  });

  test('no predicate lets everything through', () => {
    assert.deepEqual(compileFilter([], fields, (f) => f), { source: 'true', regexes: [] });
  });

  test('a value cannot inject code', () => {
    assert.equal(evaluate('comm==x" || true || "'), false);
    assert.equal(evaluate('comm==bash\\"'), false);
    assert.equal(evaluate('comm==x\' || true || \''), false);
  });
});

describe('names in filters', () => {
  const named: FilterField[] = [
    { name: 'signal', type: 'number', names: SIGNALS },
    { name: 'sig_name', type: 'string', decode: 'enum', names: SIGNALS },
    { name: 'flag_names', type: 'string', decode: 'flags', names: MOUNT_FLAGS },
  ];

  function run(text: string, v: Record<string, unknown>): boolean {
    const preds = parseFilter(text);
    assert.equal(checkFilter(preds, named), undefined, text);
    const { source, regexes } = compileFilter(preds, named, (f) => `v.${f}`);
    return new Function('R', 'v', `return ${source};`)(regexes, v) as boolean;
  }

  test('a number field with names takes the name: signal==SIGKILL is signal==9', () => {
    assert.equal(run('signal==SIGKILL', { signal: 9 }), true);
    assert.equal(run('signal==SIGKILL', { signal: 15 }), false);
    assert.equal(run('signal!=SIGTERM', { signal: 9 }), true);
    assert.equal(run('signal>=SIGRTMIN', { signal: 40 }), true);
    assert.equal(run('signal==SIGRTMIN+2', { signal: 34 }), true);
  });

  test('a number name pushed into the kernel is its value', () => {
    const { constants } = splitFilter(parseFilter('signal==SIGUSR1'), { fields: named, kernelFilters: { signal: { constant: 'targ_sig', bytes: 4 } } });
    assert.deepEqual(constants, { targ_sig: 10 });
  });

  test('enum and flags fields compare as strings', () => {
    assert.equal(run('sig_name==SIGKILL', { sig_name: 'SIGKILL' }), true);
    assert.equal(run('flag_names==MS_RDONLY|MS_NOSUID', { flag_names: 'MS_RDONLY|MS_NOSUID' }), true);
    assert.equal(run('flag_names~MS_BIND', { flag_names: 'MS_BIND|MS_REC' }), true);
  });

  test('an unknown name is an error listing close names', () => {
    for (const [text, close] of [['signal==SIGKIL', 'SIGKILL'], ['sig_name==SIGTREM', 'SIGTERM'], ['flag_names==MS_RDONLY|MS_NOSUIT', 'MS_NOSUID']]) {
      const err = checkFilter(parseFilter(`pid==1,${text}`), [...fields, ...named]);
      assert.ok(err, text);
      assert.equal(err.column, 7);
      assert.match(err.message, new RegExp(`did you mean [^)]*${close.replace(/[+|]/g, '\\$&')}`), err.message);
    }
  });
});

describe('regexes are RE2: linear time, IG syntax', () => {
  test('a backtracking bomb evaluates (and does not hang the runner)', () => {
    const preds = parseFilter('path~^/tmp/(a+)+$');
    const { source, regexes } = compileFilter(preds, fields, (f) => `v_${f}`);
    const match = new Function('R', 'v_path', `return ${source};`);
    assert.equal(match(regexes, `/tmp/${'a'.repeat(34)}!`), false);
    assert.equal(match(regexes, `/tmp/${'a'.repeat(34)}`), true);
  });

  test('backreferences and lookaround are recipe errors saying RE2 syntax is used', () => {
    for (const re of ['(a)\\1', 'a(?=b)', '(?<!x)y']) {
      const err = checkFilter(parseFilter(`pid==1,path~${re}`), fields);
      assert.ok(err, re);
      assert.equal(err.column, 7);
      assert.match(err.message, /invalid regular expression \(filters use RE2 syntax/);
    }
  });
});

describe('kernel filters', () => {
  test('kernelFiltersExcept leaves the named fields to user space', () => {
    const table = kernelFiltersExcept(TASK_KERNEL_FILTERS, 'comm');
    const { constants, user } = splitFilter(parseFilter('comm==ls,pid==5'), { fields, kernelFilters: table });
    assert.deepEqual(constants, { targ_tgid: 5 });
    assert.deepEqual(user.map((p) => p.field), ['comm']);
  });

  test('an empty comm is not pushed (the constant would mean "no filter")', () => {
    assert.deepEqual(splitFilter(parseFilter('comm=='), TASK).constants, {});
  });
});

describe('filter properties (fast-check)', () => {
  const op = fc.constantFrom<FilterOp>('==', '!=', '>=', '>', '<=', '<', '~', '!~');
  // a value ending in a backslash cannot be followed by a comma: "\," is the escape
  const value = fc.string({ unit: fc.constantFrom('a', 'b', ',', '\\', ' ', '=', '~', '!', '<', 'é', '|', '0') })
    .map((v) => v.trim())
    .filter((v) => !v.endsWith('\\'));
  const predicate = fc.record({ field: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), op, value })
    // `>` then `=x` reads as `>=` then `x`: the syntax itself cannot tell them apart
    .filter((p) => !((p.op === '>' || p.op === '<') && p.value.startsWith('=')));

  test('predicate lists round-trip through the text syntax', () => {
    fc.assert(fc.property(fc.array(predicate, { minLength: 1, maxLength: 6 }), (preds) => {
      const parsed = parseFilter(formatFilter(preds)).map(({ field, op, value }) => ({ field, op, value }));
      assert.deepEqual(parsed, preds.map(({ field, op, value }) => ({ field, op, value })));
    }), { numRuns: 500 });
  });

  type Event = { n: number; s: string; l: string[]; b: boolean };
  const schema: FilterField[] = [
    { name: 'n', type: 'number' }, { name: 's', type: 'string' }, { name: 'l', type: 'string[]' }, { name: 'b', type: 'boolean' },
  ];
  const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', ' ', '/'), maxLength: 5 });
  const event = fc.record({ n: fc.integer({ min: -3, max: 3 }), s: word, l: fc.array(word, { maxLength: 3 }), b: fc.boolean() });
  // patterns RE2 and JavaScript read alike, so JavaScript's RegExp can be the reference
  // (values are trimmed, so a pattern of a space is written \s)
  const pattern = fc.constantFrom('', 'a', '^a', 'b$', 'a.c', '[ab]+', '^$', '^-?[0-9]$', 'a|c', '\\s', 'tru', '^/');
  const pred = fc.oneof(
    fc.record({ field: fc.constant('n'), op: fc.constantFrom<FilterOp>('==', '!=', '>=', '>', '<=', '<'), value: fc.integer({ min: -3, max: 3 }).map(String) }),
    fc.record({ field: fc.constantFrom('s', 'l'), op: fc.constantFrom<FilterOp>('==', '!='), value: word.map((w) => w.trim()) }),
    fc.record({ field: fc.constant('b'), op: fc.constantFrom<FilterOp>('==', '!='), value: fc.constantFrom('true', 'false') }),
    fc.record({ field: fc.constantFrom('n', 's', 'l', 'b'), op: fc.constantFrom<FilterOp>('~', '!~'), value: pattern }),
  );

  /** the meaning of a predicate, written out plainly */
  function reference(p: Pick<Predicate, 'field' | 'op' | 'value'>, e: Event): boolean {
    const v = e[p.field as keyof Event];
    const text = Array.isArray(v) ? v.join(' ') : String(v);
    if (p.op === '~') return new RegExp(p.value).test(text);
    if (p.op === '!~') return !new RegExp(p.value).test(text);
    const [a, b]: [number | string, number | string] = typeof v === 'number' ? [v, Number(p.value)] : [text, p.value];
    switch (p.op) {
      case '==': return a === b;
      case '!=': return a !== b;
      case '>=': return a >= b;
      case '>': return a > b;
      case '<=': return a <= b;
      default: return a < b;
    }
  }

  test('compiled filters agree with a reference evaluator', () => {
    fc.assert(fc.property(fc.array(pred, { maxLength: 4 }), fc.array(event, { minLength: 1, maxLength: 8 }), (preds, events) => {
      const parsed = parseFilter(formatFilter(preds));
      if (preds.length === 0) parsed.length = 0;
      assert.equal(checkFilter(parsed, schema), undefined);
      const { source, regexes } = compileFilter(parsed, schema, (f) => `e.${f}`);
      const compiled = new Function('R', 'e', `return ${source};`) as (r: unknown, e: Event) => boolean;
      for (const e of events) assert.equal(compiled(regexes, e), preds.every((p) => reference(p, e)), `${formatFilter(preds)} on ${JSON.stringify(e)}`);
    }), { numRuns: 500 });
  });
});
