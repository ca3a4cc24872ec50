import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ManualClock } from "../../clock.ts";
import { StallWatchdog } from "./stall-watchdog.ts";

describe("StallWatchdog", () => {
  it("fires once the limit passes without data, counted from the last feed", () => {
    const clock = new ManualClock();
    let stalls = 0;
    const watchdog = new StallWatchdog(clock, 1000, () => (stalls += 1));
    clock.advance(600);
    watchdog.feed();
    clock.advance(999);
    assert.equal(stalls, 0, "a feed at 600 ms moves the limit to 1600 ms");
    assert.equal(watchdog.fired(), false);
    clock.advance(1);
    assert.equal(stalls, 1);
    assert.equal(watchdog.fired(), true);
    clock.advance(10_000);
    assert.equal(stalls, 1, "it fires only once");
    assert.equal(clock.pendingTimers(), 0);
  });

  it("keeps one timer however often it is fed, and none once stopped", () => {
    const clock = new ManualClock();
    const watchdog = new StallWatchdog(clock, 1000, () => assert.fail("stopped watchdog fired"));
    for (let i = 0; i < 100; i++) {
      clock.advance(10);
      watchdog.feed();
    }
    assert.equal(clock.pendingTimers(), 1);
    watchdog.stop();
    assert.equal(clock.pendingTimers(), 0);
    clock.advance(5000);
    assert.equal(watchdog.fired(), false);
  });
});
