// V8's optimizing compilers are large: the first time Maglev and Turbofan run they touch about 7 MiB
// of node's own machine code, and those pages stay resident for the rest of the process's life (at
// 10 namespaces the operator's steady resident set is 78 MiB with them, 69 without). The image
// starts node with both off (`--no-maglev --no-turbofan`), so an operator at rest, or reconciling a
// few namespaces at a time, runs in V8's interpreter and its baseline compiler. The first large
// batch of writes (a cold converge or a refresh across many namespaces) turns Turbofan on for good:
// over thousands of writes it saves more CPU than it costs. Maglev stays off: turned on after
// start-up it compiles on the main thread, and a cold converge of 1,000 namespaces then took longer
// than with neither (bench/results).
import { setFlagsFromString } from "node:v8";

import type { Logger } from "./observability/logger.ts";
import type { Observation, Observer } from "./observability/observer.ts";

/**
 * Writes in one reconcile from which Turbofan is turned on: a cold converge over 1,000 namespaces or
 * more (a Secret and a ServiceAccount each), a refresh over 2,000. Smaller batches took no
 * measurably longer without it; a converge at 5,000 namespaces used 12 % less CPU with it.
 */
export const largeBatchWrites = 2000;

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
