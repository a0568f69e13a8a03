import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitText, flameGraphSvg, foldedText, stackCounts } from '../../src/runner/flamegraph.ts';

const rows = [
  { pid: 1, stack: 'app;main;hot', count: 30 },
  { pid: 1, stack: 'app;main;cold', count: 10 },
  { pid: 2, stack: 'k<w>;a&b_[k]', count: 10 },
  { note: 'not a stack row' },
];

describe('flame graph and folded stacks (no root)', () => {
  test('folded text: one "stack count" line per row with both, other records left out', () => {
    assert.equal(foldedText(stackCounts(rows)), 'app;main;hot 30\napp;main;cold 10\nk<w>;a&b_[k] 10\n');
  });

  test('SVG: a frame per node, widths in proportion to samples, names escaped, script inline, nothing external', () => {
    const svg = flameGraphSvg(stackCounts(rows), 'test & title');
    const frames = [...svg.matchAll(/<g class="f" data-s="(\d+)" data-n="(\d+)" data-d="(\d+)"><title>([^<]*)<\/title><rect x="[\d.]+" y="\d+" width="([\d.]+)"/g)]
      .map((m) => ({ name: m[4], n: Number(m[2]), depth: Number(m[3]), width: Number(m[5]) }));
    const byName = new Map(frames.map((f) => [f.name.replace(/ \(.*$/, ''), f]));
    assert.equal(byName.get('all')!.n, 50);
    assert.equal(byName.get('main')!.n, 40);
    assert.equal(byName.get('hot')!.depth, 3);
    assert.ok(Math.abs(byName.get('hot')!.width / byName.get('all')!.width - 0.6) < 0.01, 'hot: 30 of 50 samples wide');
    assert.ok(byName.has('k&lt;w&gt;') && byName.has('a&amp;b_[k]'), 'XML-escaped names');
    assert.match(svg, /<title>hot \(30 samples, 60\.00%\)<\/title>/);
    assert.match(svg, /test &amp; title/);
    assert.match(svg, /<script><!\[CDATA\[/);
    assert.doesNotMatch(svg, /(href|src)=/, 'no external assets');
  });

  test('labels fit their frame or are cut with ..', () => {
    assert.equal(fitText('gadget_hot_loop', 200), 'gadget_hot_loop');
    assert.equal(fitText('gadget_hot_loop', 60), 'gadge..', '7 characters at 7 px each');
    assert.equal(fitText('gadget_hot_loop', 10), '');
  });

  test('no samples: an empty graph, still a valid document', () => {
    const svg = flameGraphSvg([]);
    assert.match(svg, /data-total="0"/);
    assert.match(svg, /<\/svg>\n$/);
  });
});
