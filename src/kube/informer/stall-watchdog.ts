// Notices a list or watch response that stops sending without closing, so the informer replaces it
// instead of waiting on it for ever.

import type { Clock, TimerHandle } from "../../clock.ts";

/** Calls `onStall` once `limitMs` pass without `feed`; feeding only records the time, so it is cheap. */
export class StallWatchdog {
  readonly #clock: Clock;
  readonly #limitMs: number;
  readonly #onStall: () => void;
  #lastFed: number;
  #timer: TimerHandle | undefined;
  #fired = false;

  constructor(clock: Clock, limitMs: number, onStall: () => void) {
    this.#clock = clock;
    this.#limitMs = limitMs;
    this.#onStall = onStall;
    this.#lastFed = clock.now();
    this.#arm(limitMs);
  }

  feed(): void {
    this.#lastFed = this.#clock.now();
  }

  /** Whether `onStall` was called. */
  fired(): boolean {
    return this.#fired;
  }

  stop(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      const idleMs = this.#clock.now() - this.#lastFed;
      if (idleMs < this.#limitMs) {
        this.#arm(this.#limitMs - idleMs);
        return;
      }
      this.#fired = true;
      this.#onStall();
    }, ms);
  }
}
