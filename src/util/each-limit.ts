/**
 * fn over every item, at most `limit` at a time, started in the items' order.
 * Every item runs even when one throws (nothing is left half-done behind a
 * rejection); the first error is thrown once all have settled.
 */
export async function eachLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`eachLimit: limit must be a positive integer, got ${limit}`);
  const it = items[Symbol.iterator]();
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    for (let next = it.next(); !next.done; next = it.next()) {
      try {
        await fn(next.value);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  if (failed) throw failed.err;
}
