// Time as a dependency: the real clock for production, a manual one that tests advance by hand.

declare const timerBrand: unique symbol;

/** Opaque handle returned by `Clock.setTimer`; only good for passing back to `clearTimer`. */
export interface TimerHandle {
  readonly [timerBrand]: true;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** Node fires a timer longer than this after 1 ms, which would turn a far-off requeue into a hot loop. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, Math.min(Math.max(ms, 0), MAX_TIMER_MS)) as unknown as TimerHandle,
  clearTimer: (handle) => {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};

interface ManualTimer {
  readonly at: number;
  readonly fn: () => void;
}

/** A clock that only moves when `advance` is called; timers fire in due order, ties in scheduling order. */
export class ManualClock implements Clock {
  #now: number;
  readonly #timers = new Set<ManualTimer>();

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.#now + Math.max(ms, 0), fn };
    this.#timers.add(timer);
    return timer as unknown as TimerHandle;
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle as unknown as ManualTimer);
  }

  /** Number of timers scheduled and not yet fired or cleared. */
  pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, including ones scheduled by fired timers. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (let next = this.#nextDue(target); next !== undefined; next = this.#nextDue(target)) {
      this.#timers.delete(next);
      this.#now = next.at;
      next.fn();
    }
    this.#now = target;
  }

  #nextDue(target: number): ManualTimer | undefined {
    let earliest: ManualTimer | undefined;
    // A Set iterates in insertion order, so of timers due at the same time the first scheduled wins.
    for (const timer of this.#timers) {
      if (timer.at <= target && (earliest === undefined || timer.at < earliest.at)) earliest = timer;
    }
    return earliest;
  }
}
