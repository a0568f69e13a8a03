/**
 * The enrich stage's one rule (src/runner/enrich.ts), on lines and files: a
 * resolved-out container's events go, an event gains its container's fields
 * and, in a cluster's merge, its node; the splice equals what parsing would
 * give over arbitrary event lines, and never touches the event's own bytes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import fc from 'fast-check';
import { containerFields, mergeTables, type ContainerTable } from '../../src/containers/table.ts';
import { EnrichError, enrichRaw, keyOf, lineEnricher, topMembers } from '../../src/runner/enrich.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gadget-run-enrich-'));

const web = { id: 'a'.repeat(64), runtime: 'containerd' as const, cgroupId: '7', cgroupPath: '/kubepods/x', name: 'web', k8s: { namespace: 'shop', pod: 'web-1', container: 'web', labels: { app: 'web', 'a"b': 'c\\d' } } };
const db = { id: 'b'.repeat(64), runtime: 'containerd' as const, cgroupId: '8', cgroupPath: '/kubepods/y', name: 'db' };
const TABLE: ContainerTable = { containers: [web, db], steps: { s: { selected: ['7'], rejected: ['8'] } } };

test('enrich, one line: container fields by cgroup id, a rejected container dropped, an unknown one untouched, no node in a local run', () => {
  const enrich = lineEnricher(TABLE, 's');
  const line = '{"pid":1,"cgroup_id":7}';
  assert.deepEqual(JSON.parse(enrich(line, undefined)!), { pid: 1, cgroup_id: 7, ...containerFields(web) });
  assert.equal(enrich('{"pid":2,"cgroup_id":8}', undefined), null);
  assert.equal(enrich('{"pid":3,"cgroup_id":9}', undefined), '{"pid":3,"cgroup_id":9}');
  assert.equal(enrich('{"pid":3}', undefined), '{"pid":3}');
  // another step resolved nothing out: 8 is just a container there
  assert.equal(JSON.parse(lineEnricher(TABLE, 'other')('{"cgroup_id":8}', undefined)!).container_name, 'db');
  // a cgroup id written as a string is the same id
  assert.equal(JSON.parse(enrich('{"cgroup_id":"7"}', undefined)!).pod, 'web-1');
});

test('enrich, one line: the event’s own bytes stay (a u64 past 2^53 is not rounded), whitespace is allowed, `{}` gains fields', () => {
  const enrich = lineEnricher(TABLE, 's');
  const out = enrich('{"ts":18446744073709551615,"cgroup_id":7}', 'n1')!;
  assert.ok(out.startsWith('{"ts":18446744073709551615,"cgroup_id":7,'), out);
  assert.equal(JSON.parse(enrich(' { "cgroup_id" : 7 , "x" : [ 1 , {"cgroup_id":8} ] } ', undefined)!).pod, 'web-1');
  assert.deepEqual(JSON.parse(enrich('{}', 'n1')!), { node: 'n1' });
  assert.equal(enrich('{}', undefined), '{}');
});

test('enrich, one line: a cgroup_id inside a string or a nested object is not the event’s; fields the stage adds replace the event’s own', () => {
  const enrich = lineEnricher(TABLE, 's');
  const tricky = JSON.stringify({ args: ['"cgroup_id":8', '\\"cgroup_id\\":8'], inner: { cgroup_id: 8 }, cgroup_id: 7 });
  assert.equal(JSON.parse(enrich(tricky, undefined)!).pod, 'web-1', 'the nested 8 (rejected) did not drop it');
  assert.equal(enrich(JSON.stringify({ inner: { cgroup_id: 7 } }), undefined), JSON.stringify({ inner: { cgroup_id: 7 } }));
  // an escaped key is the same key
  assert.equal(JSON.parse(enrich('{"cgroup\\u005fid":7}', undefined)!).pod, 'web-1');
  assert.equal(enrich('{"cgroup\\u005fid":8}', undefined), null);
  const again = enrich(enrich('{"cgroup_id":7,"node":"old"}', 'n1')!, 'n1')!;
  assert.deepEqual(JSON.parse(again), { cgroup_id: 7, ...containerFields(web), node: 'n1' });
  assert.equal(again.match(/"pod":/g)?.length, 1, again);
});

test('enrich, one line: what is not one JSON object is refused, not spliced', () => {
  const enrich = lineEnricher(TABLE, 's');
  for (const bad of ['[1]', '"x"', '{"a":1', '{"a":1}x', '{"a" 1}', '{a:1}', '{"a":"b}', '{"a":[1}', '{"a":}']) {
    assert.throws(() => enrich(bad, 'n'), EnrichError, bad);
  }
});

/** keys an event may have: plain ones, those the stage reads or adds, and JSON's hard cases */
const keyArb = fc.oneof(fc.constantFrom('cgroup_id', 'node', 'pod', 'container_id', 'pid', 'labels', 'a"b', 'c\\', ''), fc.string({ unit: 'binary' }).filter((k) => k !== '__proto__'));
const valueArb = fc.oneof(
  fc.constantFrom(7, 8, 9, '7', '8'),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(keyArb, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
);
const eventArb = fc.dictionary(keyArb, valueArb, { maxKeys: 8 });

test('enrich over arbitrary event lines equals the rule applied to the parsed event', () => {
  const merged = mergeTables([{ node: 'n1', table: TABLE }, { node: 'n2', table: { containers: [{ ...db, cgroupId: '7' }], steps: {} } }]);
  const cases: [ContainerTable | undefined, string | undefined][] = [[TABLE, undefined], [merged, 'n1'], [merged, 'n2'], [undefined, 'n3'], [merged, 'n9']];
  fc.assert(
    fc.property(eventArb, fc.constantFrom(...cases.keys()), fc.boolean(), (generated, which, spaced) => {
      // plain objects, as JSON.parse gives them (the generator's have no prototype)
      const event = JSON.parse(JSON.stringify(generated)) as Record<string, unknown>;
      const [table, node] = cases[which];
      const line = spaced ? JSON.stringify(event, null, 1).replace(/\n/g, ' ') : JSON.stringify(event);
      const got = lineEnricher(table, 's')(line, node);
      // the rule, on the parsed event
      const raw = event.cgroup_id;
      const id = typeof raw === 'string' && /^\d+$/.test(raw) ? raw : Number.isInteger(raw) && (raw as number) >= 0 ? String(raw) : undefined;
      const onNode = table === merged ? node : undefined;
      const key = (c: string) => (onNode === undefined ? c : `${onNode}\u0000${c}`);
      if (table?.containers.length && id !== undefined && (table.steps.s?.rejected ?? []).includes(key(id))) {
        assert.equal(got, null);
        return;
      }
      const row = id === undefined ? undefined : table?.containers.find((c) => c.cgroupId === id && c.node === onNode);
      const add = { ...(row ? containerFields(row) : {}), ...(node !== undefined ? { node } : {}) };
      const kept = Object.fromEntries(Object.entries(event).filter(([k]) => !Object.hasOwn(add, k)));
      assert.notEqual(got, null);
      assert.deepStrictEqual(JSON.parse(got!), { ...kept, ...add });
      if (!Object.keys(add).length) assert.equal(got, line, 'nothing to add: the line as it was');
    }),
    { numRuns: 3000 },
  );
});

test('topMembers finds exactly the top-level keys of arbitrary objects', () => {
  fc.assert(
    fc.property(eventArb, (generated) => {
      const event = JSON.parse(JSON.stringify(generated)) as Record<string, unknown>;
      const line = JSON.stringify(event);
      const { members } = topMembers(line);
      assert.deepEqual(members.map((m) => keyOf(line, m)), Object.keys(event));
      for (const m of members) assert.deepEqual(JSON.parse(line.slice(m.valueStart, m.end)), event[keyOf(line, m)]);
    }),
    { numRuns: 2000 },
  );
});

test('enrichRaw: each part of a merge is enriched with its node’s rows; a merge changed since is refused with what to do', async () => {
  const dir = tmp();
  const merged = mergeTables([{ node: 'a', table: TABLE }, { node: 'b', table: { containers: [], steps: {} } }]);
  const a = '{"cgroup_id":7}\n{"cgroup_id":8}\n';
  const b = '{"cgroup_id":7}\n';
  const raw = path.join(dir, 's.ndjson');
  fs.writeFileSync(raw, a + b);
  const parts = [{ node: 'a', bytes: a.length, events: 2 }, { node: 'b', bytes: b.length, events: 1 }];
  const { events, columns } = await enrichRaw(raw, path.join(dir, 'out.ndjson'), merged, 's', parts);
  assert.equal(events, 2);
  assert.ok(columns.includes('pod') && columns.includes('node'));
  const out = fs.readFileSync(path.join(dir, 'out.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(out.map((e) => [e.node, e.pod]), [['a', 'web-1'], ['b', undefined]]);
  fs.appendFileSync(raw, '{"cgroup_id":7}\n');
  await assert.rejects(enrichRaw(raw, path.join(dir, 'out.ndjson'), merged, 's', parts), /add up to 48: it was changed after the merge; merge the nodes' folders again/);
  fs.writeFileSync(raw, '{"cgroup_id":7}\nnot json\n');
  await assert.rejects(enrichRaw(raw, path.join(dir, 'out.ndjson'), TABLE, 's'), /s\.ndjson: event 2: not a JSON object/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['out.ndjson', 's.ndjson'], 'a failed enrich leaves no temp file');
});
