// V8's optimizing compilers are large: the first time Maglev and Turbofan run they touch about 7 MiB
// of node's own machine code, and those pages stay resident for the rest of the process's life (at
// 10 namespaces the operator's steady resident set is 78 MiB with them, 69 without). The image
// starts node with both off (`--no-maglev --no-turbofan`), so an operator at rest, or reconciling a
// few namespaces at a time, runs in V8's interpreter and its baseline compiler. The first large
// batch of writes (a cold converge over 1,000 namespaces or more, a refresh over 2,000) turns Maglev
// on for good. Turbofan stays off: its compile jobs raised the peak of a cold converge at 5,000
// namespaces past 130 MiB, where Maglev's kept it under 120 and saved more CPU (bench/results).
import { setFlagsFromString } from "node:v8";

import type { Logger } from "./observability/logger.ts";
import type { Observation, Observer } from "./observability/observer.ts";

/**
 * Writes in one reconcile from which Maglev is turned on: a cold converge over 1,000 namespaces or
 * more (a Secret and a ServiceAccount each), a refresh over 2,000. Turned on after start-up, Maglev
 * compiles on the main thread, one function at a time, so its compile memory stays small. A cold
 * converge of 5,000 namespaces took 7.3–7.9 s and 2.4–2.5 CPU s with it, 8.1–8.4 s and 3.4 CPU s
 * without, with a peak of 119 MiB against 110; one of 1,000 took 1.55 s (median of four) and 0.65
 * CPU s with it, 1.62 s and 0.71 without.
 */
export const largeBatchWrites = 2000;

/** Whether node's flags leave Maglev off (`--no-maglev`); the last one wins. */
export function maglevOffAtStart(execArgv: readonly string[]): boolean {
  let off = false;
  for (const arg of execArgv) {
    const flag = arg.replaceAll("_", "-");
    if (flag === "--no-maglev") off = true;
    if (flag === "--maglev") off = false;
  }
  return off;
}

export interface MaglevOnDemandOptions {
  readonly log: Logger;
  /** Whether Maglev is off now; defaults to what node's command line says. */
  readonly off?: boolean;
  readonly threshold?: number;
  /** Turns Maglev on; tests pass their own. */
  readonly enable?: () => void;
}

/** Turns Maglev on at the first batch of writes of at least the threshold, if it is off. */
export class MaglevOnDemand implements Observer {
  #off: boolean;
  readonly #log: Logger;
  readonly #threshold: number;
  readonly #enable: () => void;

  constructor(options: MaglevOnDemandOptions) {
    this.#off = options.off ?? maglevOffAtStart(process.execArgv);
    this.#log = options.log;
    this.#threshold = options.threshold ?? largeBatchWrites;
    this.#enable =
      options.enable ??
      (() => {
        setFlagsFromString("--maglev");
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
      "a large batch of writes: turning on V8's Maglev compiler",
    );
  }
}
