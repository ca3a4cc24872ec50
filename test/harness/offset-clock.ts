// Real time with an offset a test moves forward, and real timers: jumps a running operator hours
// ahead (past a token's refresh time or expiry) while its watches and requests run as usual.
import { systemClock, type Clock, type TimerHandle } from "../../src/clock.ts";

export class OffsetClock implements Clock {
  #offsetMs = 0;

  now(): number {
    return Date.now() + this.#offsetMs;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    return systemClock.setTimer(fn, ms);
  }

  clearTimer(handle: TimerHandle): void {
    systemClock.clearTimer(handle);
  }

  /** Moves time forward; timers already set still fire after their real delay. */
  jump(ms: number): void {
    this.#offsetMs += ms;
  }
}
