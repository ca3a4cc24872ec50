// The sweep of what no ECRPullSecret claims any more (plan/sweep.ts) as a task of its own, apart
// from the CRs' workqueue: it runs once workers start, after a CR is deleted and on every resync,
// one run at a time (requests while one waits make one run), and a failed run is retried with the
// workqueue's backoff. Only the leader runs it.
import type { Clock } from "../clock.ts";
import { Workqueue, runWorkers, type WorkResult } from "../kube/workqueue.ts";
import type { Logger } from "../observability/logger.ts";
import type { Observer } from "../observability/observer.ts";
import { applyPlan } from "./apply.ts";
import type { ClusterCache } from "./cluster-cache.ts";
import { emptyPlan } from "./plan/desired.ts";
import { planSweep } from "./plan/sweep.ts";
import { RetryLater } from "./retry-later.ts";
import type { SpecResolver } from "./spec-resolver.ts";
import type { Writer } from "./writer.ts";

export interface SweeperOptions {
  cache: ClusterCache;
  specs: SpecResolver;
  writer: Writer;
  writeConcurrency: number;
  observer: Observer;
  clock: Clock;
  log: Logger;
  /** How often to sweep besides after deletions: the resync period. */
  intervalMs: number;
}

/** The one key of the sweeper's own queue, which gives it coalescing, backoff and draining. */
const sweepKey = "sweep";

export class Sweeper {
  readonly #options: SweeperOptions;
  readonly #queue: Workqueue;
  #worker: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SweeperOptions) {
    this.#options = options;
    this.#queue = new Workqueue({ clock: options.clock });
  }

  /** Asks for a sweep soon; it runs once the sweeper has started. */
  request(): void {
    this.#queue.add(sweepKey);
  }

  /** Sweeps now and then every interval, until `stop`. */
  start(): void {
    const { log, intervalMs } = this.#options;
    this.#worker = runWorkers(this.#queue, 1, () => this.#sweep(), {
      onError: (_key, err) => {
        const message = err instanceof Error ? err.message : "unknown error";
        const level = err instanceof RetryLater ? "info" : "error";
        log[level]({ err: message, retries: this.#queue.numRequeues(sweepKey) }, "sweep will be retried");
      },
    });
    this.request();
    this.#timer = setInterval(() => {
      this.request();
    }, intervalMs);
    this.#timer.unref();
  }

  /** Waits for a sweep in progress to finish; a requested one is dropped. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#queue.shutDownWithDrain();
    await this.#worker;
  }

  async #sweep(): Promise<WorkResult> {
    const { cache, specs, writer, log } = this.#options;
    writer.ensureWritable();
    const sweep = planSweep({
      crs: cache.ecrPullSecrets.list(),
      specOf: (cr) => specs.resolved(cr),
      namespace: (name) => cache.namespace(name),
      serviceAccounts: cache.allServiceAccounts(),
      managedSecrets: cache.managedSecrets(),
    });
    if (sweep.serviceAccountEdits.length + sweep.secretDeletes.length === 0) {
      return {};
    }
    const failures = await applyPlan({ ...emptyPlan(), ...sweep }, this.#options);
    log.info(
      {
        secretsDeleted: sweep.secretDeletes.length,
        serviceAccountsEdited: sweep.serviceAccountEdits.length,
        failed: failures.length,
      },
      "removed what no ECRPullSecret claims",
    );
    if (failures.length > 0) {
      throw new RetryLater(`sweep failed in ${failures.length} namespaces`);
    }
    return {};
  }
}
