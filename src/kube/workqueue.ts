// Rate-limited workqueue of string keys with client-go semantics, and the worker loop that drains it.
// A key is queued at most once, is never handed to two workers at once, and a key added while it
// is being processed is queued again when its worker calls `done`.

import { systemClock } from "../clock.ts";
import type { Clock, TimerHandle } from "../clock.ts";

export interface BackoffOptions {
  /** Delay before the first retry; each further failure doubles it. */
  baseMs: number;
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 500, maxMs: 5 * 60_000 };

/** Callbacks for metrics; the queue calls them synchronously and knows nothing about the metrics library. */
export interface WorkqueueHooks {
  /** A key became queued (adds of a key already queued are not counted). */
  onAdd?(key: string): void;
  /** A key was scheduled for a rate-limited retry after `delayMs`. */
  onRetry?(key: string, delayMs: number): void;
  /** The number of keys waiting to be processed changed. */
  onDepth?(depth: number): void;
  /** A worker took a key that had waited `waitedMs` in the queue. */
  onStart?(key: string, waitedMs: number): void;
  /** A worker finished a key after `workMs`. */
  onDone?(key: string, workMs: number): void;
}

export interface WorkqueueOptions {
  clock?: Clock;
  backoff?: BackoffOptions;
  hooks?: WorkqueueHooks;
}

interface DelayedAdd {
  readonly readyAt: number;
  readonly timer: TimerHandle;
}

export class Workqueue {
  readonly #clock: Clock;
  readonly #backoff: BackoffOptions;
  readonly #hooks: WorkqueueHooks;

  /** Keys waiting for a worker, in order; a Set because a key is queued at most once. */
  readonly #queue = new Set<string>();
  /** Keys that need processing: everything queued plus keys re-added while processing. */
  readonly #dirty = new Set<string>();
  /** Keys handed to a worker and not yet `done`, with the time they were handed out. */
  readonly #processing = new Map<string, number>();
  /** When each queued key was queued, for the wait-time hook. */
  readonly #queuedAt = new Map<string, number>();
  readonly #delayed = new Map<string, DelayedAdd>();
  readonly #failures = new Map<string, number>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  readonly #drained: (() => void)[] = [];
  #shuttingDown = false;

  constructor(options: WorkqueueOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#backoff = options.backoff ?? defaultBackoff;
    this.#hooks = options.hooks ?? {};
    if (!(this.#backoff.baseMs > 0) || !(this.#backoff.maxMs >= this.#backoff.baseMs)) {
      throw new RangeError(
        `backoff needs 0 < baseMs <= maxMs, got baseMs=${this.#backoff.baseMs} maxMs=${this.#backoff.maxMs}`,
      );
    }
  }

  /** Queues `key` unless it is already queued; cancels any delayed add of it, since it will run now. */
  add(key: string): void {
    if (this.#shuttingDown) return;
    this.#cancelDelayed(key);
    this.#enqueue(key);
  }

  /** Queues `key` after `ms`. Of several delayed adds of one key only the earliest is kept. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.#clock.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.readyAt <= readyAt) return;
      this.#clock.clearTimer(pending.timer);
    }
    const timer = this.#clock.setTimer(() => {
      this.#delayed.delete(key);
      this.#enqueue(key);
    }, ms);
    this.#delayed.set(key, { readyAt, timer });
  }

  /** Queues `key` after its per-key exponential backoff and counts the failure. */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delayMs = backoffDelay(this.#backoff, failures);
    this.#hooks.onRetry?.(key, delayMs);
    this.addAfter(key, delayMs);
  }

  /** Resets the backoff of `key`; call it when the key was processed successfully. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** How many rate-limited retries `key` has had since it was last forgotten. */
  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Number of keys waiting for a worker (not counting those being processed or delayed). */
  len(): number {
    return this.#queue.size;
  }

  /**
   * Waits for a key and marks it as processing; the caller must call `done(key)` when finished.
   * Resolves to undefined once the queue is shut down.
   */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
    });
  }

  /** Marks `key` as no longer processing; if it was added meanwhile it is queued again. */
  done(key: string): void {
    const startedAt = this.#processing.get(key);
    if (startedAt === undefined) return;
    this.#processing.delete(key);
    this.#hooks.onDone?.(key, this.#clock.now() - startedAt);
    if (this.#shuttingDown) {
      this.#dirty.delete(key);
      if (this.#processing.size === 0) this.#releaseDrained();
      return;
    }
    if (this.#dirty.has(key)) this.#push(key);
  }

  /**
   * Stops at once: pending and future `get` calls resolve to undefined, queued and delayed keys are
   * dropped and adds are ignored. Keys already handed out may still be passed to `done`.
   */
  shutDown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) this.#clock.clearTimer(timer);
    this.#delayed.clear();
    this.#queue.clear();
    this.#queuedAt.clear();
    for (const key of this.#dirty) {
      if (!this.#processing.has(key)) this.#dirty.delete(key);
    }
    this.#hooks.onDepth?.(0);
    for (const resolve of this.#waiters.splice(0)) resolve(undefined);
    if (this.#processing.size === 0) this.#releaseDrained();
  }

  /**
   * Shuts down like `shutDown` and resolves once every key already handed to a worker is `done`.
   * Unlike client-go, queued keys that no worker has taken are dropped rather than processed:
   * a level-triggered controller finds them again on its next start.
   */
  shutDownWithDrain(): Promise<void> {
    const drained = new Promise<void>((resolve) => {
      this.#drained.push(resolve);
    });
    if (this.#shuttingDown) {
      if (this.#processing.size === 0) this.#releaseDrained();
    } else {
      this.shutDown();
    }
    return drained;
  }

  #enqueue(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#hooks.onAdd?.(key);
    // A key being processed is queued again by `done`, never handed to a second worker.
    if (!this.#processing.has(key)) this.#push(key);
  }

  #push(key: string): void {
    this.#queue.add(key);
    this.#queuedAt.set(key, this.#clock.now());
    this.#hooks.onDepth?.(this.#queue.size);
    while (this.#waiters.length > 0) {
      const next = this.#take();
      if (next === undefined) return;
      this.#waiters.shift()?.(next);
    }
  }

  #take(): string | undefined {
    const first = this.#queue.values().next();
    if (first.done === true) return undefined;
    const key = first.value;
    const now = this.#clock.now();
    this.#queue.delete(key);
    this.#dirty.delete(key);
    this.#processing.set(key, now);
    this.#hooks.onDepth?.(this.#queue.size);
    this.#hooks.onStart?.(key, now - (this.#queuedAt.get(key) ?? now));
    this.#queuedAt.delete(key);
    return key;
  }

  #cancelDelayed(key: string): void {
    const pending = this.#delayed.get(key);
    if (pending === undefined) return;
    this.#clock.clearTimer(pending.timer);
    this.#delayed.delete(key);
  }

  #releaseDrained(): void {
    for (const resolve of this.#drained.splice(0)) resolve();
  }
}

/** Delay before retry number `failures + 1`: base doubled per earlier failure, capped. */
export function backoffDelay(backoff: BackoffOptions, failures: number): number {
  // 2 ** 1024 is Infinity; stopping the exponent early keeps base * 2 ** n finite.
  if (failures >= 64) return backoff.maxMs;
  return Math.min(backoff.baseMs * 2 ** failures, backoff.maxMs);
}

export interface WorkResult {
  /** Process the key again after this many milliseconds (a periodic refresh, not a retry). */
  requeueAfter?: number;
}

export interface RunWorkersOptions {
  /** Called with each error a handler throws, after the key has been scheduled for retry. */
  onError?(key: string, err: unknown): void;
}

/**
 * Runs `concurrency` workers that take keys from `queue` until it shuts down. A handler that throws
 * has its key retried with backoff; one that returns resets the backoff and may ask for a requeue.
 * Resolves when every worker has stopped.
 */
export async function runWorkers(
  queue: Workqueue,
  concurrency: number,
  handler: (key: string) => Promise<WorkResult>,
  options: RunWorkersOptions = {},
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const worker = async (): Promise<void> => {
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      try {
        const result = await handler(key);
        queue.forget(key);
        if (result.requeueAfter !== undefined) queue.addAfter(key, result.requeueAfter);
      } catch (err) {
        queue.addRateLimited(key);
        options.onError?.(key, err);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
