import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { ManualClock, MAX_TIMER_MS, systemClock } from "./clock.ts";

describe("ManualClock", () => {
  it("does not move or fire timers until advanced", () => {
    const clock = new ManualClock(1_000);
    let fired = false;
    clock.setTimer(() => (fired = true), 0);
    assert.equal(clock.now(), 1_000);
    assert.equal(fired, false);
    clock.advance(0);
    assert.equal(fired, true);
  });

  it("fires due timers in time order, ties in scheduling order, at their due time", () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    clock.setTimer(() => fired.push(`c@${clock.now()}`), 300);
    clock.setTimer(() => fired.push(`a@${clock.now()}`), 100);
    clock.setTimer(() => fired.push(`b@${clock.now()}`), 100);
    clock.setTimer(() => fired.push(`late@${clock.now()}`), 301);
    clock.advance(300);
    assert.deepEqual(fired, ["a@100", "b@100", "c@300"]);
    assert.equal(clock.now(), 300);
    assert.equal(clock.pendingTimers(), 1);
  });

  it("fires timers scheduled by fired timers when they fall due within the same advance", () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    clock.setTimer(() => {
      fired.push(clock.now());
      clock.setTimer(() => fired.push(clock.now()), 50);
      clock.setTimer(() => fired.push(clock.now()), 500);
    }, 100);
    clock.advance(200);
    assert.deepEqual(fired, [100, 150]);
    clock.advance(400);
    assert.deepEqual(fired, [100, 150, 600]);
  });

  it("does not fire a cleared timer", () => {
    const clock = new ManualClock();
    let fired = false;
    const handle = clock.setTimer(() => (fired = true), 10);
    clock.clearTimer(handle);
    clock.advance(100);
    assert.equal(fired, false);
    assert.equal(clock.pendingTimers(), 0);
  });
});

describe("systemClock", () => {
  it("does not fire a timer longer than Node's limit early", async () => {
    let fired = false;
    const handle = systemClock.setTimer(() => (fired = true), MAX_TIMER_MS * 2);
    // Node runs an overflowing timer after 1 ms, so it would come before this 20 ms one.
    await sleep(20);
    systemClock.clearTimer(handle);
    assert.equal(fired, false);
  });
});
