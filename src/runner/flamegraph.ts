/**
 * Folded stacks and a self-contained flame graph SVG from a step's rows
 * (records with `stack`, "a;b;c", and `count`: profile/cpu's events, or a
 * transform's result of that shape). The SVG carries its own script: click a
 * frame to zoom to it (its ancestors stay, full width), click "Reset zoom"
 * to go back, "Search" (or Ctrl-F) highlights frames matching a regex and
 * says what share of samples they hold. No external assets: it opens from a
 * file in any browser.
 */

export interface StackCount {
  stack: string;
  count: number;
}

/** Records that carry a folded stack and a count; anything else is left out. */
export function stackCounts(records: Iterable<unknown>): StackCount[] {
  const out: StackCount[] = [];
  for (const r of records) {
    const o = r as Partial<StackCount> | null;
    if (o && typeof o.stack === 'string' && typeof o.count === 'number' && o.count > 0) out.push({ stack: o.stack, count: o.count });
  }
  return out;
}

/** Folded stacks as flame graph tools write them ("a;b;c 12" a line); a line that is not one throws, naming it. */
export function parseFolded(text: string, name = 'folded stacks'): StackCount[] {
  const out: StackCount[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^(.+) (\d+)$/.exec(line);
    if (!m || !(Number(m[2]) > 0)) throw new Error(`${name}:${i + 1}: not a folded stack line ("frame;frame;frame COUNT"): ${JSON.stringify(line.slice(0, 80))}`);
    out.push({ stack: m[1], count: Number(m[2]) });
  });
  return out;
}

/** The folded format flame graph tools read: "frame;frame;frame count" per line. */
export function foldedText(stacks: StackCount[]): string {
  return stacks.map((s) => `${s.stack} ${s.count}\n`).join('');
}

interface Node {
  name: string;
  count: number;
  children: Map<string, Node>;
}

const WIDTH = 1200;
const FRAME = 16;
const PAD_TOP = 40;
const PAD_BOTTOM = 24;
const PAD_SIDE = 10;
/** frames narrower than this (px) are left out: they cannot be read or clicked */
const MIN_WIDTH = 0.1;
const CHAR_PX = 7;

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** What fits of a name in `px` pixels ("" when not even two characters do). */
export function fitText(name: string, px: number): string {
  const chars = Math.floor((px - 6) / CHAR_PX);
  if (chars < 3) return '';
  return name.length <= chars ? name : `${name.slice(0, chars - 2)}..`;
}

/** Kernel frames orange, JIT/JS frames green, native ones red to yellow, each name its own stable shade. */
function color(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const v = (h % 1000) / 1000;
  if (name.endsWith('_[k]')) return `rgb(${230 + Math.round(v * 25)},${120 + Math.round(v * 60)},${40 + Math.round(v * 30)})`;
  if (/^(JS:|LazyCompile:|Function:|Builtin:|Builtins_|Interpreter|Baseline|Maglev|Turbofan)/.test(name)) return `rgb(${50 + Math.round(v * 60)},${180 + Math.round(v * 60)},${60 + Math.round(v * 40)})`;
  return `rgb(${205 + Math.round(v * 50)},${Math.round(80 + v * 150)},${Math.round(v * 55)})`;
}

/**
 * Each frame's share of a profile's samples by its path from the root
 * ("a;b;c"): what a differential flame graph compares.
 */
export function pathShares(stacks: StackCount[]): Map<string, number> {
  const counts = new Map<string, number>();
  let total = 0;
  for (const { stack, count } of stacks) {
    total += count;
    let p = '';
    for (const f of stack.split(';')) {
      p = p ? `${p};${f}` : f;
      counts.set(p, (counts.get(p) ?? 0) + count);
    }
  }
  for (const [p, n] of counts) counts.set(p, total ? n / total : 0);
  return counts;
}

/** A differential frame: red as its share grew against the baseline, blue as it shrank, white unchanged. */
function diffColor(delta: number, maxAbs: number): string {
  const k = maxAbs ? Math.round((Math.min(1, Math.abs(delta) / maxAbs)) * 200) : 0;
  return delta > 0 ? `rgb(255,${255 - k},${255 - k})` : delta < 0 ? `rgb(${255 - k},${255 - k},255)` : 'rgb(250,250,250)';
}

/**
 * The flame graph of `stacks`. With `baseline` (another profile's stacks) it
 * is differential, as Brendan Gregg's: the frames are this profile's, each
 * coloured by how its share of the samples changed against the baseline's
 * (red grew, blue shrank), its tooltip saying by how many points.
 */
export function flameGraphSvg(stacks: StackCount[], title = 'Flame Graph', baseline?: StackCount[]): string {
  const now = baseline && pathShares(stacks);
  const before = baseline && pathShares(baseline);
  const delta = (p: string) => (now!.get(p) ?? 0) - (before!.get(p) ?? 0);
  const maxAbs = now ? Math.max(0, ...[...now.keys()].map((p) => Math.abs(delta(p)))) : 0;
  const root: Node = { name: 'all', count: 0, children: new Map() };
  let maxDepth = 0;
  for (const { stack, count } of stacks) {
    root.count += count;
    let node = root;
    const frames = stack.split(';');
    maxDepth = Math.max(maxDepth, frames.length);
    for (const f of frames) {
      let child = node.children.get(f);
      if (!child) node.children.set(f, (child = { name: f, count: 0, children: new Map() }));
      child.count += count;
      node = child;
    }
  }
  const height = PAD_TOP + (maxDepth + 1) * FRAME + PAD_BOTTOM;
  const scale = root.count ? (WIDTH - 2 * PAD_SIDE) / root.count : 0;
  const frames: string[] = [];
  const walk = (node: Node, depth: number, start: number, at: string) => {
    const w = node.count * scale;
    if (w < MIN_WIDTH) return;
    const x = PAD_SIDE + start * scale;
    const y = height - PAD_BOTTOM - (depth + 1) * FRAME;
    const pct = ((node.count / root.count) * 100).toFixed(2);
    // the root's share is 100% in both: it is the differential graph's white
    const d = now && depth > 0 ? delta(at) : 0;
    const change = now ? `, ${d >= 0 ? '+' : ''}${(d * 100).toFixed(2)} points against the baseline` : '';
    frames.push(
      `<g class="f" data-s="${start}" data-n="${node.count}" data-d="${depth}"><title>${xml(node.name)} (${node.count} samples, ${pct}%${change})</title>` +
        `<rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${FRAME - 1}" fill="${now ? diffColor(d, maxAbs) : color(node.name)}" rx="2"/>` +
        `<text x="${(x + 3).toFixed(2)}" y="${y + FRAME - 4}">${xml(fitText(node.name, w))}</text></g>`,
    );
    let offset = start;
    // widest first, as flamegraph.pl sorts by name; either way the order carries no meaning
    for (const child of [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      walk(child, depth + 1, offset, depth === 0 ? child.name : `${at};${child.name}`);
      offset += child.count;
    }
  };
  walk(root, 0, 0, '');
  return `<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg" data-total="${root.count}" data-side="${PAD_SIDE}" data-char="${CHAR_PX}">
<style>
  text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; pointer-events: none; }
  .f rect { cursor: pointer; stroke: #fff; stroke-width: 0.5; }
  .f:hover rect { stroke: #000; stroke-width: 1; }
  .f.m rect { fill: rgb(230,0,230); }
  .ui { cursor: pointer; font-size: 14px; fill: #333; pointer-events: all; }
  #title { font-size: 17px; text-anchor: middle; pointer-events: none; }
</style>
<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#f8f8f0"/>
<text id="title" x="${WIDTH / 2}" y="24">${xml(title)}</text>
<text id="reset" class="ui" x="${PAD_SIDE}" y="24" visibility="hidden">Reset zoom</text>
<text id="search" class="ui" x="${WIDTH - PAD_SIDE - 60}" y="24">Search</text>
<text id="matched" x="${WIDTH - PAD_SIDE - 160}" y="${height - 6}"></text>
<text id="details" x="${PAD_SIDE}" y="${height - 6}"> </text>
<g id="frames">
${frames.join('\n')}
</g>
<script><![CDATA[${SCRIPT}]]></script>
</svg>
`;
}

/** The SVG's own script: zoom, reset, search, details on hover. */
const SCRIPT = `
(function () {
  var svg = document.documentElement, total = +svg.dataset.total, side = +svg.dataset.side, cw = +svg.dataset.char;
  var width = +svg.getAttribute('width') - 2 * side;
  var frames = Array.prototype.slice.call(document.querySelectorAll('.f'));
  var details = document.getElementById('details'), reset = document.getElementById('reset');
  function fit(name, px) { var n = Math.floor((px - 6) / cw); return n < 3 ? '' : name.length <= n ? name : name.slice(0, n - 2) + '..'; }
  function nameOf(g) { return g.querySelector('title').textContent.replace(/ \\(\\d+ samples, [\\d.]+%[^)]*\\)$/, ''); }
  function zoom(s, n, d) {
    frames.forEach(function (g) {
      var gs = +g.dataset.s, gn = +g.dataset.n, gd = +g.dataset.d, r = g.querySelector('rect'), t = g.querySelector('text');
      var inside = gs >= s && gs + gn <= s + n, below = gd < d && gs <= s && gs + gn >= s + n;
      if (!inside && !below) { g.style.display = 'none'; return; }
      g.style.display = '';
      var x = below ? side : side + (gs - s) / n * width, w = below ? width : gn / n * width;
      r.setAttribute('x', x); r.setAttribute('width', w);
      t.setAttribute('x', x + 3); t.textContent = fit(nameOf(g), w);
      g.style.opacity = below ? 0.6 : 1;
    });
    reset.setAttribute('visibility', n === total ? 'hidden' : 'visible');
  }
  frames.forEach(function (g) {
    g.addEventListener('click', function () { zoom(+g.dataset.s, +g.dataset.n, +g.dataset.d); });
    g.addEventListener('mouseover', function () { details.textContent = g.querySelector('title').textContent; });
    g.addEventListener('mouseout', function () { details.textContent = ' '; });
  });
  reset.addEventListener('click', function () { zoom(0, total, 0); });
  function search(re) {
    var matched = document.getElementById('matched'), hits = [];
    frames.forEach(function (g) { var m = !!re && re.test(nameOf(g)); g.classList.toggle('m', m); if (m) hits.push(g); });
    // the share of samples under matching frames, each sample once (nested matches overlap)
    hits.sort(function (a, b) { return a.dataset.s - b.dataset.s || b.dataset.n - a.dataset.n; });
    var sum = 0, end = -1;
    hits.forEach(function (g) { var s = +g.dataset.s, n = +g.dataset.n; if (s >= end) { sum += n; end = s + n; } });
    matched.textContent = re ? 'Matched: ' + (sum / total * 100).toFixed(1) + '%' : '';
  }
  window.flameSearch = function (text) { search(text ? new RegExp(text) : null); };
  document.getElementById('search').addEventListener('click', function () {
    var text = prompt('Search frames (regular expression)', '');
    if (text !== null) window.flameSearch(text);
  });
  window.addEventListener('keydown', function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); document.getElementById('search').dispatchEvent(new Event('click')); }
  });
  // ?s=REGEX in the URL searches at load (a link to a highlighted view)
  var q = /[?&]s=([^&]*)/.exec(location.search);
  if (q) window.flameSearch(decodeURIComponent(q[1]));
})();
`;
