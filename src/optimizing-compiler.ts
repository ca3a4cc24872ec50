// V8's optimizing compilers are large: the first time Maglev and Turbofan run they touch about 7 MiB
// of node's own machine code, and those pages stay resident for the rest of the process's life (at
// 10 namespaces the operator's steady resident set is 78 MiB with them, 69 without). The image
// starts node with both off (`--no-maglev --no-turbofan`), so an operator at rest, or reconciling
// thousands of namespaces, runs in V8's interpreter and its baseline compiler. Only a very large
// batch of writes (a cold converge or a refresh over 10,000 namespaces or more) turns Turbofan on
// for good. Maglev stays off: turned on after start-up it compiles on the main thread, and a cold
// converge of 1,000 namespaces then took longer than with neither (bench/results).
import { setFlagsFromString } from "node:v8";

import type { Logger } from "./observability/logger.ts";
import type { Observation, Observer } from "./observability/observer.ts";

/**
 * Writes in one reconcile from which Turbofan is turned on: a cold converge over 10,000 namespaces
 * or more (a Secret and a ServiceAccount each), a refresh over 20,000. Below that it saved no time on
 * two cores and raised the peak by about 10 MiB: a cold converge of 1,000 namespaces took 2.11 s and
 * 1.03 CPU s with it, 2.03 s and 0.98 without (medians of four rounds), with a peak of 103–108 MiB
 * against 92–95; one of 5,000 took 8.7 s with it and 8.8 without (medians of eight), 3.2 CPU s
 * against 4.0, with a peak of 125–132 MiB against 113–119.
 */
export const largeBatchWrites = 20_000;

/** Whether node's flags leave Turbofan off (`--no-turbofan` or its alias `--no-opt`); the last one wins. */
export function turbofanOffAtStart(execArgv: readonly string[]): boolean {
  let off = false;
  for (const arg of execArgv) {
    const flag = arg.replaceAll("_", "-");
    if (flag === "--no-turbofan" || flag === "--no-opt") off = true;
    if (flag === "--turbofan" || flag === "--opt") off = false;
  }
  return off;
}

export interface TurbofanOnDemandOptions {
  readonly log: Logger;
  /** Whether Turbofan is off now; defaults to what node's command line says. */
  readonly off?: boolean;
  readonly threshold?: number;
  /** Turns Turbofan on; tests pass their own. */
  readonly enable?: () => void;
}

/** Turns Turbofan on at the first batch of writes of at least the threshold, if it is off. */
export class TurbofanOnDemand implements Observer {
  #off: boolean;
  readonly #log: Logger;
  readonly #threshold: number;
  readonly #enable: () => void;

  constructor(options: TurbofanOnDemandOptions) {
    this.#off = options.off ?? turbofanOffAtStart(process.execArgv);
    this.#log = options.log;
    this.#threshold = options.threshold ?? largeBatchWrites;
    this.#enable =
      options.enable ??
      (() => {
        setFlagsFromString("--turbofan");
      });
  }

  get off(): boolean {
    return this.#off;
  }

  observe(observation: Observation): void {
    if (!this.#off || observation.type !== "WritesPlanned" || observation.writes < this.#threshold) return;
    this.#enable();
    this.#off = false;
    this.#log.info(
      { writes: observation.writes },
      "a large batch of writes: turning on V8's optimizing compiler",
    );
  }
}
