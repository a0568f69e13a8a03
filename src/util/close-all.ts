/**
 * Run every clean-up, in order, even when one throws (a sink's last flush on a full disk);
 * then rethrow the first error. Kernel objects close whatever happened before them.
 */
export function closeAll(...closers: (() => unknown)[]): void {
  let first: { error: unknown } | undefined;
  for (const close of closers) {
    try {
      close();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) throw first.error;
}
