import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { mapLimit } from "./concurrency.ts";

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("mapLimit", () => {
  it("never has more than `limit` calls in flight", async () => {
    const pending = new Map<string, () => void>();
    let maxInFlight = 0;
    const result = mapLimit(["a", "b", "c", "d", "e"], 2, (ns) => {
      const { promise, resolve } = Promise.withResolvers<string>();
      pending.set(ns, () => {
        pending.delete(ns);
        resolve(ns.toUpperCase());
      });
      maxInFlight = Math.max(maxInFlight, pending.size);
      return promise;
    });
    await flush();
    assert.deepEqual([...pending.keys()], ["a", "b"]);
    pending.get("b")?.();
    await flush();
    assert.deepEqual([...pending.keys()], ["a", "c"]);
    while (pending.size > 0) {
      for (const release of [...pending.values()]) release();
      await flush();
    }
    await result;
    assert.equal(maxInFlight, 2);
  });

  it("keeps going after a failure and reports each item's outcome in input order", async () => {
    const boom = new Error("forbidden in kube-system");
    const results = await mapLimit(["default", "kube-system", "team-a"], 1, (ns) =>
      ns === "kube-system" ? Promise.reject(boom) : Promise.resolve(ns.length),
    );
    assert.deepEqual(results, [
      { item: "default", status: "fulfilled", value: 7 },
      { item: "kube-system", status: "rejected", reason: boom },
      { item: "team-a", status: "fulfilled", value: 6 },
    ]);
  });

  it("turns a synchronous throw into a rejected result", async () => {
    const results = await mapLimit([1], 1, () => {
      throw new Error("sync");
    });
    assert.equal(results[0]?.status, "rejected");
  });

  it("passes each item's index", async () => {
    const results = await mapLimit(["x", "y"], 4, (item, index) => Promise.resolve(`${item}${index}`));
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? r.value : undefined)),
      ["x0", "y1"],
    );
  });

  it("returns nothing for no items", async () => {
    assert.deepEqual(await mapLimit([], 3, () => Promise.resolve(1)), []);
  });
});
