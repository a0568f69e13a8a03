/** Where a JSON path is in a parsed YAML (or JSON) document, and how messages write the path. */
import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml';

/** Offset of the node at `path` (the deepest part of it that exists); with `key`, of the last key itself. */
export function nodeOffset(doc: Document, path: (string | number)[], key = false): number {
  // walk as deep as the document goes; point at the key for unknown-property errors
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth);
    if (key && depth === path.length && depth > 0) {
      const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === sub[sub.length - 1]);
        if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
      }
      continue;
    }
    const node = (sub.length ? doc.getIn(sub, true) : doc.contents) as Node | undefined;
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) return node.range[0];
  }
  return 0;
}

/** `steps[2].filter`: the path as messages show it. */
export function jsonPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
