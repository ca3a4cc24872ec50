// Bounded fan-out for writes across namespaces: at most `limit` calls in flight, and one failure
// does not stop or hide the others. p-map takes the next item only when a call finishes; p-limit
// queues a call for every item up front, which at 5,000 items holds about 5 MiB of pending promises
// and closures until the batch ends, at the peak of a cold converge.

import pMap from "p-map";

export type SettledItem<I, O> =
  { item: I; status: "fulfilled"; value: O } | { item: I; status: "rejected"; reason: unknown };

/** Runs `fn` over `items` with at most `limit` in flight; results come back in item order. */
export function mapLimit<I, O>(
  items: readonly I[],
  limit: number,
  fn: (item: I, index: number) => Promise<O>,
): Promise<SettledItem<I, O>[]> {
  return pMap(
    items,
    async (item, index): Promise<SettledItem<I, O>> => {
      try {
        return { item, status: "fulfilled", value: await fn(item, index) };
      } catch (reason) {
        return { item, status: "rejected", reason };
      }
    },
    { concurrency: limit },
  );
}
