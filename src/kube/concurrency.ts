// Bounded fan-out for writes across namespaces: at most `limit` calls in flight, and one failure
// does not stop or hide the others.

import pLimit from "p-limit";

export type SettledItem<I, O> =
  { item: I; status: "fulfilled"; value: O } | { item: I; status: "rejected"; reason: unknown };

/** Runs `fn` over `items` with at most `limit` in flight; results come back in item order. */
export async function mapLimit<I, O>(
  items: Iterable<I>,
  limit: number,
  fn: (item: I, index: number) => Promise<O>,
): Promise<SettledItem<I, O>[]> {
  const run = pLimit(limit);
  return Promise.all(
    Array.from(items, (item, index) =>
      run(fn, item, index).then(
        (value): SettledItem<I, O> => ({ item, status: "fulfilled", value }),
        (reason: unknown): SettledItem<I, O> => ({ item, status: "rejected", reason }),
      ),
    ),
  );
}
