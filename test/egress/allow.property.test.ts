/**
 * The egress allow-list parser and the DNS wire encoder the kernel's name
 * maps are keyed by, under generated input (recipes are untrusted). No root.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { AllowError, decodeWire, destinationText, encodeWire, NAME_WIRE_BYTES, parseAllow, ruleText, type Rule } from '../../src/egress/allow.ts';
import { encodeName } from '../helpers/dns.ts';

const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const proto = fc.constantFrom(undefined, 'tcp', 'udp');
const suffix = (p: number | undefined, pr: string | undefined) => (p ? `:${p}${pr ? `/${pr}` : ''}` : '');
const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,14}$/);
const name = fc.array(label, { minLength: 1, maxLength: 6 }).map((l) => l.join('.')).filter((n) => n.length < 100 && !/^[\d.]+$/.test(n));

/** The rule's meaning, without how it was written. */
const meaning = (r: Rule) => ({ ...r, text: undefined, addr: 'addr' in r ? [...r.addr] : undefined });

test('IPv4 and IPv6 CIDRs with ports and protocols: parsed to the IPv6 space, canonical spelling parses to the same rule', () => {
  const v4 = fc.tuple(fc.ipV4(), fc.option(fc.integer({ min: 0, max: 32 }), { nil: undefined }));
  const v6 = fc.tuple(fc.ipV6(), fc.option(fc.integer({ min: 0, max: 128 }), { nil: undefined }));
  fc.assert(fc.property(fc.oneof(v4, v6), port, proto, ([ip, bits], p, pr) => {
    const host = `${ip}${bits === undefined ? '' : `/${bits}`}`;
    const text = `${p && ip.includes(':') ? `[${host}]` : host}${suffix(p, pr)}`;
    const r = parseAllow(text);
    assert.equal(r.kind, 'cidr');
    if (r.kind !== 'cidr') return;
    const v4ip = net.isIPv4(ip);
    assert.equal(r.prefix, (v4ip ? 96 : 0) + (bits ?? (v4ip ? 32 : 128)));
    assert.equal(r.port, p ?? 0);
    assert.equal(r.proto, !p ? 0 : pr === 'tcp' ? 6 : pr === 'udp' ? 17 : 0);
    // host bits beyond the prefix are cleared
    for (let bit = r.prefix; bit < 128; bit++) assert.equal((r.addr[bit >> 3] >> (7 - (bit & 7))) & 1, 0);
    assert.deepEqual(meaning(parseAllow(ruleText(r))), meaning(r));
  }), { numRuns: 500 });
});

test('names and wildcards: lower-cased, canonical spelling parses to the same rule', () => {
  fc.assert(fc.property(name, fc.boolean(), fc.boolean(), port, proto, (n, wild, upper, p, pr) => {
    const written = upper ? n.toUpperCase() : n;
    const r = parseAllow(`${wild ? '*.' : ''}${written}${suffix(p, pr)}`);
    assert.equal(r.kind, wild ? 'wildcard' : 'name');
    if (r.kind !== 'name' && r.kind !== 'wildcard') return;
    assert.equal(r.name, n);
    assert.deepEqual(meaning(parseAllow(ruleText(r))), meaning(r));
  }), { numRuns: 500 });
});

test('anything else is an AllowError naming the entry, never another exception', () => {
  fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
    try {
      parseAllow(s);
    } catch (err) {
      assert.ok(err instanceof AllowError, `${JSON.stringify(s)}: ${(err as Error).message}`);
      assert.ok((err as Error).message.startsWith(`"${s}"`));
    }
  }), { numRuns: 2000 });
  for (const bad of ['', '*', '10.0.0.0/33', '[10.0.0.1]:80', 'a..b', 'example.com:0', 'example.com:70000', 'x.*.com', '1.2.3.4.5', 'example.com/udp', '-'.repeat(64)]) {
    assert.throws(() => parseAllow(bad), AllowError, bad);
  }
});

test('DNS wire format: what the kernel builds from a question (the test resolver\'s encoder), zero-padded, and back', () => {
  fc.assert(fc.property(name, (n) => {
    const wire = encodeWire(n);
    assert.equal(wire.length, NAME_WIRE_BYTES);
    const plain = encodeName(n);
    assert.deepEqual([...wire.subarray(0, plain.length)], [...plain]);
    assert.ok(wire.subarray(plain.length).every((b) => b === 0));
    assert.equal(decodeWire(wire), n);
  }), { numRuns: 500 });
  assert.throws(() => encodeWire(`${'a'.repeat(63)}.${'b'.repeat(63)}`));
});

test('a destination is written as an allow entry parses back to a rule matching it', () => {
  fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), name), fc.integer({ min: 1, max: 65535 }), fc.constantFrom(6, 17), (host, p, pr) => {
    const r = parseAllow(destinationText(host, p, pr));
    assert.equal(r.port, p);
    assert.equal(r.proto, pr);
  }), { numRuns: 300 });
});
