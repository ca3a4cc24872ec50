import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ManualClock } from "../clock.ts";
import { backoffDelay, runWorkers, Workqueue } from "./workqueue.ts";
import type { WorkqueueOptions, WorkResult } from "./workqueue.ts";

/** Lets every pending promise callback run; no time passes on the ManualClock. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function newQueue(options: WorkqueueOptions = {}): { queue: Workqueue; clock: ManualClock } {
  const clock = new ManualClock();
  return { queue: new Workqueue({ clock, ...options }), clock };
}

/** Tracks whether a promise has settled, to assert that a `get` is still waiting. */
function watch<T>(promise: Promise<T>): { settled: () => boolean; value: () => T | undefined } {
  let settled = false;
  let value: T | undefined;
  void promise.then((v) => {
    settled = true;
    value = v;
  });
  return { settled: () => settled, value: () => value };
}

describe("Workqueue", () => {
  describe("add", () => {
    it("queues a key once no matter how many times it is added", async () => {
      const added: string[] = [];
      const { queue } = newQueue({ hooks: { onAdd: (key) => added.push(key) } });
      queue.add("a");
      queue.add("b");
      queue.add("a");
      queue.add("a");
      assert.equal(queue.len(), 2);
      assert.deepEqual(added, ["a", "b"]);
      assert.equal(await queue.get(), "a");
      assert.equal(await queue.get(), "b");
      assert.equal(queue.len(), 0);
    });

    it("hands keys out in the order they were first added", async () => {
      const { queue } = newQueue();
      for (const key of ["c", "a", "b", "a"]) queue.add(key);
      assert.deepEqual([await queue.get(), await queue.get(), await queue.get()], ["c", "a", "b"]);
    });

    it("gives each waiting getter a different key", async () => {
      const { queue } = newQueue();
      const first = queue.get();
      const second = queue.get();
      queue.add("a");
      queue.add("a");
      queue.add("b");
      assert.deepEqual(await Promise.all([first, second]), ["a", "b"]);
    });
  });

  describe("processing", () => {
    it("does not hand a key re-added while processing to a second worker", async () => {
      const { queue } = newQueue();
      queue.add("a");
      assert.equal(await queue.get(), "a");
      queue.add("a");
      assert.equal(queue.len(), 0);
      const second = watch(queue.get());
      await flush();
      assert.equal(second.settled(), false);
      queue.done("a");
      await flush();
      assert.equal(second.value(), "a");
    });

    it("queues a key re-added while processing only once after done", async () => {
      const added: string[] = [];
      const { queue } = newQueue({ hooks: { onAdd: (key) => added.push(key) } });
      queue.add("a");
      await queue.get();
      queue.add("a");
      queue.add("a");
      queue.done("a");
      assert.equal(queue.len(), 1);
      assert.deepEqual(added, ["a", "a"]);
    });

    it("does not requeue a key that was not added again while processing", async () => {
      const { queue } = newQueue();
      queue.add("a");
      await queue.get();
      queue.done("a");
      assert.equal(queue.len(), 0);
    });

    it("ignores done for a key that is not being processed", () => {
      const { queue } = newQueue();
      queue.add("a");
      queue.done("a");
      queue.done("b");
      assert.equal(queue.len(), 1);
    });
  });

  describe("addAfter", () => {
    it("queues keys when their delays elapse, earliest first", () => {
      const { queue, clock } = newQueue();
      queue.addAfter("slow", 300);
      queue.addAfter("fast", 100);
      assert.equal(queue.len(), 0);
      clock.advance(99);
      assert.equal(queue.len(), 0);
      clock.advance(1);
      assert.equal(queue.len(), 1);
      clock.advance(200);
      assert.equal(queue.len(), 2);
    });

    it("hands out delayed keys in the order they fell due", async () => {
      const { queue, clock } = newQueue();
      queue.addAfter("slow", 300);
      queue.addAfter("fast", 100);
      clock.advance(300);
      assert.deepEqual([await queue.get(), await queue.get()], ["fast", "slow"]);
    });

    it("keeps the earlier delay when a later one is requested", async () => {
      const { queue, clock } = newQueue();
      queue.addAfter("a", 200);
      queue.addAfter("a", 1_000);
      clock.advance(200);
      assert.equal(queue.len(), 1);
      queue.done((await queue.get()) ?? "");
      clock.advance(1_000);
      assert.equal(queue.len(), 0);
      assert.equal(clock.pendingTimers(), 0);
    });

    it("replaces a later delay with an earlier one", () => {
      const { queue, clock } = newQueue();
      queue.addAfter("a", 1_000);
      queue.addAfter("a", 200);
      assert.equal(clock.pendingTimers(), 1);
      clock.advance(200);
      assert.equal(queue.len(), 1);
    });

    it("drops the pending delay when the key is added directly", async () => {
      const { queue, clock } = newQueue();
      queue.addAfter("a", 1_000);
      queue.add("a");
      assert.equal(clock.pendingTimers(), 0);
      queue.done((await queue.get()) ?? "");
      clock.advance(1_000);
      assert.equal(queue.len(), 0);
    });

    it("adds at once when the delay is not positive", () => {
      const { queue } = newQueue();
      queue.addAfter("zero", 0);
      queue.addAfter("negative", -5);
      assert.equal(queue.len(), 2);
    });

    it("wakes a waiting getter when the delay elapses", async () => {
      const { queue, clock } = newQueue();
      const next = watch(queue.get());
      queue.addAfter("a", 50);
      await flush();
      assert.equal(next.settled(), false);
      clock.advance(50);
      await flush();
      assert.equal(next.value(), "a");
    });
  });

  describe("addRateLimited", () => {
    it("doubles the delay on each failure up to the cap", () => {
      const delays: number[] = [];
      const { queue } = newQueue({
        backoff: { baseMs: 100, maxMs: 1_000 },
        hooks: { onRetry: (_key, delayMs) => delays.push(delayMs) },
      });
      for (let i = 0; i < 7; i++) queue.addRateLimited("a");
      assert.deepEqual(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
      assert.equal(queue.numRequeues("a"), 7);
    });

    it("queues the key only after its backoff", async () => {
      const { queue, clock } = newQueue({ backoff: { baseMs: 100, maxMs: 1_000 } });
      queue.addRateLimited("a");
      clock.advance(99);
      assert.equal(queue.len(), 0);
      clock.advance(1);
      assert.equal(queue.len(), 1);
      queue.done((await queue.get()) ?? "");
      queue.addRateLimited("a");
      clock.advance(199);
      assert.equal(queue.len(), 0);
      clock.advance(1);
      assert.equal(queue.len(), 1);
    });

    it("backs off each key on its own", () => {
      const delays: string[] = [];
      const { queue } = newQueue({
        backoff: { baseMs: 100, maxMs: 1_000 },
        hooks: { onRetry: (key, delayMs) => delays.push(`${key}:${delayMs}`) },
      });
      queue.addRateLimited("a");
      queue.addRateLimited("a");
      queue.addRateLimited("b");
      assert.deepEqual(delays, ["a:100", "a:200", "b:100"]);
      assert.equal(queue.numRequeues("b"), 1);
    });

    it("starts again from the base delay after forget", () => {
      const delays: number[] = [];
      const { queue } = newQueue({
        backoff: { baseMs: 100, maxMs: 1_000 },
        hooks: { onRetry: (_key, delayMs) => delays.push(delayMs) },
      });
      queue.addRateLimited("a");
      queue.addRateLimited("a");
      queue.addRateLimited("a");
      queue.forget("a");
      assert.equal(queue.numRequeues("a"), 0);
      queue.addRateLimited("a");
      assert.deepEqual(delays, [100, 200, 400, 100]);
    });

    it("uses a 500 ms base and a 5 minute cap by default", () => {
      const delays: number[] = [];
      const { queue } = newQueue({ hooks: { onRetry: (_key, delayMs) => delays.push(delayMs) } });
      for (let i = 0; i < 12; i++) queue.addRateLimited("a");
      assert.equal(delays[0], 500);
      assert.equal(delays[1], 1_000);
      assert.equal(delays.at(-1), 300_000);
    });

    it("rejects a backoff whose base is not positive or exceeds the cap", () => {
      assert.throws(() => new Workqueue({ backoff: { baseMs: 0, maxMs: 10 } }), RangeError);
      assert.throws(() => new Workqueue({ backoff: { baseMs: 100, maxMs: 10 } }), RangeError);
    });
  });

  describe("backoffDelay", () => {
    const backoff = { baseMs: 500, maxMs: 300_000 };
    const cases: [failures: number, delayMs: number][] = [
      [0, 500],
      [1, 1_000],
      [5, 16_000],
      [9, 256_000],
      [10, 300_000],
      [1_000, 300_000],
      [Number.MAX_SAFE_INTEGER, 300_000],
    ];
    for (const [failures, delayMs] of cases) {
      it(`waits ${delayMs} ms after ${failures} earlier failures`, () => {
        assert.equal(backoffDelay(backoff, failures), delayMs);
      });
    }
  });

  describe("shutDown", () => {
    it("releases waiting getters with undefined", async () => {
      const { queue } = newQueue();
      const waiting = [queue.get(), queue.get()];
      queue.shutDown();
      assert.deepEqual(await Promise.all(waiting), [undefined, undefined]);
      assert.equal(await queue.get(), undefined);
    });

    it("drops queued and delayed keys and ignores later adds", async () => {
      const { queue, clock } = newQueue();
      queue.add("queued");
      queue.addAfter("delayed", 100);
      queue.shutDown();
      assert.equal(clock.pendingTimers(), 0);
      queue.add("late");
      queue.addAfter("late", 10);
      queue.addRateLimited("late");
      clock.advance(1_000);
      assert.equal(queue.len(), 0);
      assert.equal(queue.numRequeues("late"), 0);
      assert.equal(await queue.get(), undefined);
    });

    it("does not requeue a key re-added while it was processing", async () => {
      const { queue } = newQueue();
      queue.add("a");
      await queue.get();
      queue.add("a");
      queue.shutDown();
      queue.done("a");
      assert.equal(queue.len(), 0);
      assert.equal(await queue.get(), undefined);
    });
  });

  describe("shutDownWithDrain", () => {
    it("resolves only when keys already handed out are done", async () => {
      const { queue } = newQueue();
      queue.add("a");
      queue.add("b");
      assert.equal(await queue.get(), "a");
      const drained = watch(queue.shutDownWithDrain());
      assert.equal(await queue.get(), undefined);
      await flush();
      assert.equal(drained.settled(), false);
      queue.done("a");
      await flush();
      assert.equal(drained.settled(), true);
    });

    it("waits for the last of several in-flight keys", async () => {
      const { queue } = newQueue();
      queue.add("a");
      queue.add("b");
      await queue.get();
      await queue.get();
      const drained = watch(queue.shutDownWithDrain());
      queue.done("a");
      await flush();
      assert.equal(drained.settled(), false);
      queue.done("b");
      await flush();
      assert.equal(drained.settled(), true);
    });

    it("resolves at once when nothing is being processed", async () => {
      const { queue } = newQueue();
      queue.add("a");
      await queue.shutDownWithDrain();
      assert.equal(queue.len(), 0);
    });

    it("resolves after an earlier shutDown once in-flight keys are done", async () => {
      const { queue } = newQueue();
      queue.add("a");
      await queue.get();
      queue.shutDown();
      const drained = watch(queue.shutDownWithDrain());
      await flush();
      assert.equal(drained.settled(), false);
      queue.done("a");
      await flush();
      assert.equal(drained.settled(), true);
    });
  });

  describe("hooks", () => {
    it("reports depth, time waited in the queue and time spent processing", async () => {
      const depths: number[] = [];
      const started: string[] = [];
      const finished: string[] = [];
      const { queue, clock } = newQueue({
        hooks: {
          onDepth: (depth) => depths.push(depth),
          onStart: (key, waitedMs) => started.push(`${key}:${waitedMs}`),
          onDone: (key, workMs) => finished.push(`${key}:${workMs}`),
        },
      });
      queue.add("a");
      queue.add("b");
      clock.advance(30);
      await queue.get();
      clock.advance(70);
      queue.done("a");
      await queue.get();
      assert.deepEqual(depths, [1, 2, 1, 0]);
      assert.deepEqual(started, ["a:30", "b:100"]);
      assert.deepEqual(finished, ["a:70"]);
    });
  });
});

/** A handler whose calls stay in flight until the test settles them. */
function controlledHandler(): {
  handler: (key: string) => Promise<WorkResult>;
  calls: { key: string; settle: (outcome: WorkResult | Error) => void }[];
  inFlight: () => string[];
} {
  const calls: { key: string; settle: (outcome: WorkResult | Error) => void }[] = [];
  const running = new Set<string>();
  const handler = (key: string): Promise<WorkResult> => {
    const { promise, resolve, reject } = Promise.withResolvers<WorkResult>();
    running.add(key);
    calls.push({
      key,
      settle: (outcome) => {
        running.delete(key);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      },
    });
    return promise;
  };
  return { handler, calls, inFlight: () => [...running] };
}

describe("runWorkers", () => {
  it("processes the key again after the requested delay", async () => {
    const { queue, clock } = newQueue();
    const calls: number[] = [];
    const workers = runWorkers(queue, 1, () => {
      calls.push(clock.now());
      return Promise.resolve({ requeueAfter: 1_000 });
    });
    queue.add("a");
    await flush();
    assert.deepEqual(calls, [0]);
    clock.advance(999);
    await flush();
    assert.deepEqual(calls, [0]);
    clock.advance(1);
    await flush();
    assert.deepEqual(calls, [0, 1_000]);
    queue.shutDown();
    await workers;
  });

  it("does not requeue a key whose handler asks for nothing", async () => {
    const { queue, clock } = newQueue();
    let calls = 0;
    const workers = runWorkers(queue, 1, () => {
      calls++;
      return Promise.resolve({});
    });
    queue.add("a");
    await flush();
    clock.advance(3_600_000);
    await flush();
    assert.equal(calls, 1);
    assert.equal(clock.pendingTimers(), 0);
    queue.shutDown();
    await workers;
  });

  it("retries a failing key with growing backoff and resets it on success", async () => {
    const { queue, clock } = newQueue({ backoff: { baseMs: 100, maxMs: 10_000 } });
    const calls: number[] = [];
    const errors: string[] = [];
    const workers = runWorkers(
      queue,
      1,
      () => {
        calls.push(clock.now());
        if (calls.length <= 3) return Promise.reject(new Error(`boom ${calls.length}`));
        return Promise.resolve({ requeueAfter: 5_000 });
      },
      { onError: (key, err) => errors.push(`${key}: ${(err as Error).message}`) },
    );
    queue.add("a");
    for (let t = 0; t < 700; t += 50) {
      await flush();
      clock.advance(50);
    }
    await flush();
    assert.deepEqual(calls, [0, 100, 300, 700]);
    assert.deepEqual(errors, ["a: boom 1", "a: boom 2", "a: boom 3"]);
    assert.equal(queue.numRequeues("a"), 0);
    clock.advance(5_000);
    await flush();
    assert.deepEqual(calls, [0, 100, 300, 700, 5_700]);
    queue.shutDown();
    await workers;
  });

  it("never runs one key on two workers at once and reruns it after a re-add", async () => {
    const { queue } = newQueue();
    const { handler, calls, inFlight } = controlledHandler();
    const workers = runWorkers(queue, 3, handler);
    queue.add("a");
    await flush();
    queue.add("a");
    queue.add("a");
    await flush();
    assert.deepEqual(inFlight(), ["a"]);
    assert.equal(calls.length, 1);
    calls[0]?.settle({});
    await flush();
    assert.equal(calls.length, 2);
    calls[1]?.settle({});
    await flush();
    assert.equal(calls.length, 2);
    queue.shutDown();
    await workers;
  });

  it("keeps at most `concurrency` keys in flight", async () => {
    const { queue } = newQueue();
    const { handler, calls, inFlight } = controlledHandler();
    const workers = runWorkers(queue, 2, handler);
    for (const key of ["a", "b", "c"]) queue.add(key);
    await flush();
    assert.deepEqual(inFlight(), ["a", "b"]);
    calls[0]?.settle({});
    await flush();
    assert.deepEqual(inFlight(), ["b", "c"]);
    calls[1]?.settle({});
    calls[2]?.settle({});
    queue.shutDown();
    await workers;
  });

  it("lets in-flight work finish on drain and ignores its requeue request", async () => {
    const { queue, clock } = newQueue();
    const { handler, calls } = controlledHandler();
    const workers = runWorkers(queue, 2, handler);
    queue.add("a");
    queue.add("b");
    await flush();
    queue.add("c");
    const drained = watch(queue.shutDownWithDrain());
    await flush();
    assert.equal(drained.settled(), false);
    calls[0]?.settle({ requeueAfter: 10 });
    calls[1]?.settle(new Error("fails while draining"));
    await workers;
    await flush();
    assert.equal(drained.settled(), true);
    assert.deepEqual(
      calls.map((call) => call.key),
      ["a", "b"],
    );
    assert.equal(clock.pendingTimers(), 0);
  });

  it("rejects a concurrency below one", async () => {
    const { queue } = newQueue();
    await assert.rejects(
      runWorkers(queue, 0, () => Promise.resolve({})),
      RangeError,
    );
  });
});
