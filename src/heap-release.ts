// Gives memory back to the system once a burst of work is over. V8 keeps the heap it grew to
// during start-up, a cold converge or a refresh, and its young generation at full size, long after
// the garbage is gone: without this, the steady resident set is the high-water mark of the last
// burst. One compacting collection while the process is idle returns it (bench/results).
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import type { Clock, TimerHandle } from "./clock.ts";
import type { Logger } from "./observability/logger.ts";

export interface HeapReleasePolicy {
  /** Event-loop utilization (0–1) over one interval at or above which the interval counts as busy. */
  readonly busyUtilization: number;
  /** Event-loop utilization (0–1) over one interval at or below which the interval counts as idle. */
  readonly idleUtilization: number;
  /** Consecutive idle intervals that end a burst of work. */
  readonly idleIntervals: number;
  /** How far the resident set must have grown over its lowest since the last release to release again. */
  readonly minGrowthBytes: number;
}

export const defaultHeapReleasePolicy: HeapReleasePolicy = {
  busyUtilization: 0.5,
  idleUtilization: 0.05,
  idleIntervals: 3,
  minGrowthBytes: 8 * 1024 * 1024,
};

export interface IntervalSample {
  /** Event-loop utilization since the previous sample. */
  readonly utilization: number;
  readonly rssBytes: number;
}

export interface ReleaseState {
  /** Whether a busy interval came since the last release. */
  readonly burst: boolean;
  /** Idle intervals in a row, the last sample's included. */
  readonly idleIntervals: number;
  readonly rssBytes: number;
  /** The lowest resident set seen since the last release; undefined before the first. */
  readonly lowestRssBytes: number | undefined;
}

/**
 * Release once a burst of work is over (a busy interval, then the policy's idle intervals in a row)
 * if the resident set has grown by the policy's margin over its lowest since the last release, or
 * there has been none. Light, steady work (a namespace now and then) is never a burst: a release
 * costs a full collection, and the code V8 compiles again afterwards.
 */
export function shouldReleaseHeap(state: ReleaseState, policy: HeapReleasePolicy): boolean {
  if (!state.burst || state.idleIntervals < policy.idleIntervals) return false;
  return state.lowestRssBytes === undefined || state.rssBytes - state.lowestRssBytes >= policy.minGrowthBytes;
}

interface GcOptions {
  type: "major";
  execution: "sync";
  flavor: "last-resort";
}

/**
 * V8's last-resort collection: full collections until nothing more is freed, compacting, then the
 * young generation shrunk and the freed pages unmapped (what V8 does under memory pressure). The
 * collector is taken from a fresh context so that no global `gc` is left behind.
 */
export function releaseHeap(): void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as (options: GcOptions) => void;
  setFlagsFromString("--no-expose-gc");
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
}

function sampleProcess(): () => IntervalSample {
  let previous: EventLoopUtilization = performance.eventLoopUtilization();
  return () => {
    const current = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(current, previous);
    previous = current;
    return { utilization, rssBytes: process.memoryUsage.rss() };
  };
}

export interface HeapReleaseOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly intervalMs?: number;
  readonly policy?: HeapReleasePolicy;
  /** Samples the process; the default reads event-loop utilization and RSS. */
  readonly sample?: () => IntervalSample;
  /** Releases memory; the default is releaseHeap. */
  readonly release?: () => void;
}

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

/**
 * Samples the process every interval and releases the heap once after each burst of work;
 * `releaseNow` releases at a moment the caller knows a burst has just ended.
 */
export class HeapRelease {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #policy: HeapReleasePolicy;
  readonly #sample: () => IntervalSample;
  readonly #release: () => void;
  #burst = false;
  #idleIntervals = 0;
  #lowestRssBytes: number | undefined;
  #timer: TimerHandle | undefined;

  constructor(options: HeapReleaseOptions) {
    this.#clock = options.clock;
    this.#log = options.log;
    this.#intervalMs = options.intervalMs ?? 1_000;
    this.#policy = options.policy ?? defaultHeapReleasePolicy;
    this.#sample = options.sample ?? sampleProcess();
    this.#release = options.release ?? releaseHeap;
  }

  start(): void {
    this.#schedule();
  }

  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Counts the work about to start as a burst, whatever the event loop's utilization shows: the
   * first reconcile of every CR after start-up is one, however quickly it runs.
   */
  markBurst(): void {
    this.#burst = true;
  }

  releaseNow(reason: string): void {
    this.#releaseFrom(this.#sample().rssBytes, reason);
  }

  #releaseFrom(before: number, reason: string): void {
    const startedAt = this.#clock.now();
    this.#release();
    // Sampled again so that the release's own time does not count against the next interval.
    const after = this.#sample().rssBytes;
    this.#lowestRssBytes = after;
    this.#burst = false;
    this.#idleIntervals = 0;
    this.#log.debug(
      { reason, rssBeforeMiB: mib(before), rssAfterMiB: mib(after), ms: this.#clock.now() - startedAt },
      "released the heap",
    );
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimer(() => {
      this.#check();
      this.#schedule();
    }, this.#intervalMs);
  }

  #check(): void {
    const sample = this.#sample();
    if (sample.utilization >= this.#policy.busyUtilization) this.#burst = true;
    this.#idleIntervals = sample.utilization <= this.#policy.idleUtilization ? this.#idleIntervals + 1 : 0;
    const state = {
      burst: this.#burst,
      idleIntervals: this.#idleIntervals,
      rssBytes: sample.rssBytes,
      lowestRssBytes: this.#lowestRssBytes,
    };
    if (shouldReleaseHeap(state, this.#policy)) {
      this.#releaseFrom(sample.rssBytes, "a burst of work ended");
      return;
    }
    // Before the first release the lowest level is unknown: the first burst is released whatever it grew.
    if (this.#lowestRssBytes !== undefined) {
      this.#lowestRssBytes = Math.min(this.#lowestRssBytes, sample.rssBytes);
    }
  }
}
