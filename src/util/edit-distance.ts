/** Levenshtein distance: how many one-character edits turn `a` into `b`. Error messages use it for "did you mean". */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The known name closest to `name` (at most a third of its letters different, and at least
 * `minEdits` allowed: 2 lets a swapped pair of letters through), for "did you mean".
 */
export function nearest(name: string, known: string[], minEdits = 1): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(minEdits, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}
