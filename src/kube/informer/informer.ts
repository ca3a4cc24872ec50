// A list-then-watch cache of one Kubernetes collection, with the supervision client-node's
// ListWatch lacks: backoff after errors without ever giving up, and detection of watch streams that
// go silent without closing. It lists first by a consistent read in pages (resourceVersion unset,
// `limit`), which API servers since 1.31 answer from their watch cache and, since 1.34, page by page
// from it too; where client-go's reflector asks for resourceVersion 0, the watch cache answers with
// the whole collection in one response, whatever the limit, which is slower to read and larger in
// memory. It re-watches from the last resourceVersion after an error or a stall, and lists again
// only when that version is gone (410), then at the last version it saw, as the reflector does. List
// and watch share one plain-JSON HTTP path, so cached objects have the same shape whichever way they
// arrived.

import type { KubernetesObject } from "@kubernetes/client-node";

import { systemClock } from "../../clock.ts";
import type { Clock } from "../../clock.ts";
import { classifyKubeError, KubeError } from "../errors.ts";
import type { ClusterConnection } from "../kubeconfig/cluster-access.ts";
import { KubeClient, metadataListOnly, metadataOnly, parseJson, readBody } from "../rest.ts";
import { backoffDelay } from "../workqueue.ts";
import type { BackoffOptions } from "../workqueue.ts";
import { readList } from "./list-reader.ts";
import { ObjectStore, resourceVersionOf } from "./object-store.ts";
import type { StoreChange } from "./object-store.ts";
import { StallWatchdog } from "./stall-watchdog.ts";
import { WatchStream } from "./watch-stream.ts";
import type { WatchChangeType, WatchEnd } from "./watch-stream.ts";
import { httpError, listTypeMeta, parseListItem, parseListPage, withTypeMeta } from "./wire-format.ts";
import type { ListPage, ListTypeMeta } from "./wire-format.ts";

export type WatchRestartReason = "error" | "stalled" | "expired";

/** Callbacks for logs and metrics; called synchronously, and one that throws is ignored. */
export interface InformerHooks {
  /** The watch is being replaced: after an error or a stall (from the last resourceVersion), or a 410 Gone (by a list). */
  onWatchRestart?(reason: WatchRestartReason): void;
  /** The first full list is in the store and its add handlers have run. */
  onSynced?(): void;
  /** A list or watch failed (the informer retries on its own), or a handler threw. */
  onError?(err: KubeError): void;
}

export interface InformerOptions<T> {
  /** The collection in logs and metrics, e.g. "secrets". */
  name: string;
  kubeConfig: ClusterConnection;
  /** Collection path, e.g. "/api/v1/namespaces/ns1/secrets" or "/apis/group/v1/plural". */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Turns each object as received into what the store keeps; default drops metadata.managedFields. */
  transform?: (raw: KubernetesObject) => T;
  /**
   * Lists and watch events bring the objects' metadata alone (kind PartialObjectMetadata), where the
   * server can. The transform completes what it can of the rest.
   */
  metadataOnly?: boolean;
  /** Objects per page of a list that is paged (`limit`); default 500. */
  pageSize?: number;
  /** Server-side watch timeout, jittered up to +50%; default 30. */
  watchTimeoutSeconds?: number;
  /**
   * A watch that neither sends data nor closes within its timeout plus this grace is stalled and
   * replaced; a list page that sends nothing for watchTimeoutSeconds plus this grace fails.
   * Default 10000.
   */
  stallGraceMs?: number;
  /** Delay before listing or watching again after an error; default 1 s doubling to 30 s. */
  backoff?: BackoffOptions;
  clock?: Clock;
  hooks?: InformerHooks;
}

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(obj: T, old: T): void;
  onDelete?(obj: T): void;
}

const defaultInformerBackoff: BackoffOptions = { baseMs: 1000, maxMs: 30_000 };

const defaultPageSize = 500;
const defaultWatchTimeoutSeconds = 30;
// A silent watch is replaced at most 45 s (the longest jittered timeout) + 10 s after its last
// data: within the 60 s in which the informer must notice a dead connection and recover.
const defaultStallGraceMs = 10_000;
const watchTimeoutJitter = 0.5;

/** Drops metadata.managedFields, which is often the larger part of an object and never read here. */
export function dropManagedFields(raw: KubernetesObject): KubernetesObject {
  if (raw.metadata !== undefined) delete raw.metadata.managedFields;
  return raw;
}

export class Informer<T extends KubernetesObject> {
  readonly #name: string;
  readonly #client: KubeClient;
  readonly #path: string;
  readonly #labelSelector: string | undefined;
  readonly #fieldSelector: string | undefined;
  readonly #transform: (raw: KubernetesObject) => T;
  readonly #listAccept: string | undefined;
  readonly #watchAccept: string | undefined;
  readonly #pageSize: number;
  readonly #watchTimeoutSeconds: number;
  readonly #stallGraceMs: number;
  readonly #backoff: BackoffOptions;
  readonly #clock: Clock;
  readonly #hooks: InformerHooks;

  readonly #store = new ObjectStore<T>();
  readonly #handlers: InformerHandlers<T>[] = [];
  readonly #syncWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  #running: Promise<void> | undefined;
  #stopped = false;
  #synced = false;
  /** The last resourceVersion seen, by a list, a watch event or a bookmark; watches resume from it. */
  #resourceVersion = "";
  /**
   * The resourceVersion the next list asks for: "" (a consistent read, in pages) at first and when a
   * list at a version got 410 itself, the last one seen after a watch got 410 (at least that fresh,
   * from the watch cache).
   */
  #listFrom = "";
  /** Consecutive list/watch failures with no successful list or healthy watch in between; drives the backoff. */
  #failures = 0;
  /** Consecutive 410s with no healthy watch in between: the first is relisted at once, later ones back off. */
  #expiries = 0;
  #lastActivity: number;
  /** The running watch, if one is open. */
  #watchStream: WatchStream | undefined;
  /** Aborts the running list request, if one is in flight. */
  #listRequest: AbortController | undefined;
  /** Cuts short the running backoff sleep, if any. */
  #wake: (() => void) | undefined;

  constructor(options: InformerOptions<T>) {
    this.#name = options.name;
    this.#client = new KubeClient(options.kubeConfig);
    this.#path = options.path;
    this.#labelSelector = options.labelSelector;
    this.#fieldSelector = options.fieldSelector;
    this.#transform = options.transform ?? ((raw) => dropManagedFields(raw) as T);
    this.#listAccept = options.metadataOnly === true ? metadataListOnly : undefined;
    this.#watchAccept = options.metadataOnly === true ? metadataOnly : undefined;
    this.#pageSize = options.pageSize ?? defaultPageSize;
    this.#watchTimeoutSeconds = options.watchTimeoutSeconds ?? defaultWatchTimeoutSeconds;
    this.#stallGraceMs = options.stallGraceMs ?? defaultStallGraceMs;
    this.#backoff = options.backoff ?? defaultInformerBackoff;
    this.#clock = options.clock ?? systemClock;
    this.#hooks = options.hooks ?? {};
    this.#lastActivity = this.#clock.now();
    validateOptions(options.name, {
      pageSize: this.#pageSize,
      watchTimeoutSeconds: this.#watchTimeoutSeconds,
      stallGraceMs: this.#stallGraceMs,
      backoff: this.#backoff,
    });
    if (!options.path.startsWith("/")) {
      throw new RangeError(`informer ${options.name}: path must start with "/", got ${options.path}`);
    }
    if (options.kubeConfig.getCurrentCluster() === null) {
      throw new RangeError(`informer ${options.name}: the kubeconfig has no current cluster`);
    }
  }

  /** Handlers added after start are first told about every object already in the store, as adds. */
  addHandlers(handlers: InformerHandlers<T>): void {
    this.#handlers.push(handlers);
    for (const obj of this.#store.list()) this.#call(handlers, { type: "add", obj });
  }

  /** Lists and watches until `stop`; errors are reported through hooks and retried, never fatal. */
  start(): void {
    if (this.#running !== undefined || this.#stopped) {
      throw new Error(`informer ${this.#name} cannot start twice or after stop`);
    }
    this.#lastActivity = this.#clock.now();
    this.#running = this.#run();
  }

  /** Aborts the watch or list in flight and every timer; resolves once nothing is running. */
  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#wake?.();
      this.#watchStream?.stop();
      this.#listRequest?.abort();
      const stoppedError = new Error(`informer ${this.#name} stopped before its first list`);
      for (const waiter of this.#syncWaiters) waiter.reject(stoppedError);
      this.#syncWaiters.clear();
    }
    await this.#running;
  }

  /** True once the first full list is in the store. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves after the first full list; rejects when `signal` aborts or the informer stops first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    if (this.#stopped) {
      return Promise.reject(new Error(`informer ${this.#name} stopped before its first list`));
    }
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#syncWaiters.delete(waiter);
        reject(abortReason(signal));
      };
      const waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (err: Error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      this.#syncWaiters.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#store.get(name, namespace);
  }

  /** Objects in `namespace` ("" for cluster-scoped ones), or every object when it is omitted. */
  list(namespace?: string): T[] {
    return this.#store.list(namespace);
  }

  size(): number {
    return this.#store.size();
  }

  /** Clock time of the last data from a list or watch, or of the last watch (re)opening. */
  lastActivity(): number {
    return this.#lastActivity;
  }

  async #run(): Promise<void> {
    let listNeeded = true;
    while (!this.#stopped) {
      if (listNeeded) {
        try {
          await this.#listIntoStore();
          listNeeded = false;
          this.#failures = 0;
        } catch (err) {
          if (this.#isStopped()) return;
          const error = classifyKubeError(err);
          if (error.kind === "Gone" && this.#listFrom !== "") {
            // The version asked for is gone from the watch cache and etcd: read the current state at once.
            this.#listFrom = "";
            continue;
          }
          this.#report(error);
          await this.#sleep(this.#retryDelay(error));
          continue;
        }
      }
      const end = await this.#watch();
      switch (end.kind) {
        case "closed":
          // The server ended a watch that worked, as a rule at its timeout.
          this.#watchIsHealthy();
          break;
        case "stopped":
          return;
        case "stalled":
          this.#hook(() => this.#hooks.onWatchRestart?.("stalled"));
          break;
        case "expired": {
          this.#hook(() => this.#hooks.onWatchRestart?.("expired"));
          listNeeded = true;
          // At least as fresh as what the store holds: the watch cache can answer without etcd.
          this.#listFrom = this.#resourceVersion;
          // A fresh list normally fixes a 410; only a 410 again with no healthy watch between backs off.
          const delay = this.#expiries === 0 ? 0 : backoffDelay(this.#backoff, this.#expiries - 1);
          this.#expiries += 1;
          await this.#sleep(delay);
          break;
        }
        case "error":
          // The events since the last resourceVersion are still there to watch: no list needed.
          this.#hook(() => this.#hooks.onWatchRestart?.("error"));
          this.#report(end.error);
          await this.#sleep(this.#retryDelay(end.error));
          break;
      }
    }
  }

  async #listIntoStore(): Promise<void> {
    const listFrom = this.#listFrom;
    // As client-go: a list at a version seen before goes unpaged, which the watch cache answers; a
    // consistent list is paged.
    const paged = listFrom === "";
    const firstPage = this.#selectorQuery();
    if (listFrom !== "") firstPage.set("resourceVersion", listFrom);
    if (paged) firstPage.set("limit", String(this.#pageSize));
    let objects: T[] = [];
    const onItem = (item: KubernetesObject): void => {
      objects.push(this.#transform(item));
    };
    let continueToken: string | undefined;
    let resourceVersion: string;
    do {
      let page: ListPage;
      if (continueToken === undefined) {
        page = await this.#listPage(firstPage, onItem);
      } else {
        const next = this.#selectorQuery();
        next.set("limit", String(this.#pageSize));
        next.set("continue", continueToken);
        try {
          page = await this.#listPage(next, onItem);
        } catch (err) {
          if (classifyKubeError(err).kind !== "Gone") throw err;
          // The continue token outlived its version (compaction): one full list instead, as
          // client-go's pager falls back, rather than starting over from page 1 and expiring again.
          const full = this.#selectorQuery();
          if (listFrom !== "") full.set("resourceVersion", listFrom);
          objects = [];
          page = await this.#listPage(full, onItem);
        }
      }
      resourceVersion = page.resourceVersion;
      continueToken = page.continueToken;
    } while (continueToken !== undefined);
    if (this.#stopped) return;

    const changes = this.#store.replace(objects);
    this.#resourceVersion = resourceVersion;
    for (const change of changes) this.#emit(change);
    if (!this.#synced) {
      this.#synced = true;
      this.#hook(() => this.#hooks.onSynced?.());
      for (const waiter of this.#syncWaiters) waiter.resolve();
      this.#syncWaiters.clear();
    }
  }

  /**
   * One list page. Its items go to `onItem` with the kind and apiVersion a watch object would carry:
   * a page of the usual size once it is in, a larger one item by item as it arrives, so that a large
   * raw list is never in memory whole (readList); throws a KubeError.
   */
  async #listPage(query: URLSearchParams, onItem: (item: KubernetesObject) => void): Promise<ListPage> {
    const controller = new AbortController();
    this.#listRequest = controller;
    const limitMs = this.#watchTimeoutSeconds * 1000 + this.#stallGraceMs;
    const watchdog = new StallWatchdog(this.#clock, limitMs, () => {
      controller.abort();
    });
    const onData = (): void => {
      watchdog.feed();
      this.#lastActivity = this.#clock.now();
    };
    try {
      if (this.#stopped) controller.abort();
      const response = await this.#client.open(this.#path, query, controller.signal, this.#listAccept);
      onData();
      if (response.statusCode !== 200) throw httpError(response, await readBody(response, onData));
      const what = `list of ${this.#name}`;
      let typeMeta: ListTypeMeta | undefined;
      // Lists of custom resources come with sorted keys, kind after the items: their items wait
      // for the end of the page to be given the list's kind.
      const waiting: KubernetesObject[] = [];
      const body = await readList(response, onData, {
        onHead: (head) => {
          const meta = listTypeMeta(parseJson(head, what));
          if (meta.apiVersion !== undefined && meta.itemKind !== undefined) typeMeta = meta;
        },
        onItem: (text) => {
          const item = parseListItem(parseJson(text, what), this.#name);
          if (typeMeta === undefined) waiting.push(item);
          else onItem(withTypeMeta(item, typeMeta));
        },
      });
      const page = parseListPage(parseJson("whole" in body ? body.whole : body.rest, what), this.#name);
      for (const item of waiting) onItem(withTypeMeta(item, page));
      for (const item of page.items) onItem(withTypeMeta(item, page));
      return page;
    } catch (err) {
      if (watchdog.fired()) {
        throw new KubeError({
          kind: "Unavailable",
          message: `list of ${this.#name} stalled: no data for ${limitMs} ms`,
        });
      }
      throw classifyKubeError(err);
    } finally {
      watchdog.stop();
      if (this.#listRequest === controller) this.#listRequest = undefined;
    }
  }

  /** Runs one watch request from the last resourceVersion seen; never rejects. */
  async #watch(): Promise<WatchEnd> {
    if (this.#stopped) return { kind: "stopped" };
    const stream = new WatchStream(
      {
        name: this.#name,
        client: this.#client,
        path: this.#path,
        selectors: this.#selectorQuery(),
        resourceVersion: this.#resourceVersion,
        timeoutSeconds: Math.round(jittered(this.#watchTimeoutSeconds, watchTimeoutJitter)),
        stallGraceMs: this.#stallGraceMs,
        clock: this.#clock,
        accept: this.#watchAccept,
      },
      {
        onData: () => {
          this.#lastActivity = this.#clock.now();
        },
        onChange: (type, object) => {
          this.#applyWatchChange(type, object);
        },
        onBookmark: (resourceVersion) => {
          if (resourceVersion !== undefined) this.#resourceVersion = resourceVersion;
          this.#watchIsHealthy();
        },
      },
    );
    this.#watchStream = stream;
    try {
      return await stream.ended;
    } finally {
      this.#watchStream = undefined;
    }
  }

  /** Puts a watched change in the store and tells the handlers; the next watch resumes after it. */
  #applyWatchChange(type: WatchChangeType, raw: KubernetesObject): void {
    const resourceVersion = resourceVersionOf(raw);
    const obj = this.#transform(raw);
    const change = type === "DELETED" ? this.#store.delete(obj) : this.#store.upsert(obj);
    if (resourceVersion !== undefined) this.#resourceVersion = resourceVersion;
    if (change !== undefined) this.#emit(change);
    this.#watchIsHealthy();
  }

  /** An event or a clean end ends the streaks of failures and 410s that lengthen the backoff. */
  #watchIsHealthy(): void {
    this.#failures = 0;
    this.#expiries = 0;
  }

  #selectorQuery(): URLSearchParams {
    const query = new URLSearchParams();
    if (this.#labelSelector !== undefined) query.set("labelSelector", this.#labelSelector);
    if (this.#fieldSelector !== undefined) query.set("fieldSelector", this.#fieldSelector);
    return query;
  }

  #emit(change: StoreChange<T>): void {
    for (const handlers of this.#handlers) this.#call(handlers, change);
  }

  #call(handlers: InformerHandlers<T>, change: StoreChange<T>): void {
    try {
      switch (change.type) {
        case "add":
          handlers.onAdd?.(change.obj);
          break;
        case "update":
          handlers.onUpdate?.(change.obj, change.old);
          break;
        case "delete":
          handlers.onDelete?.(change.obj);
          break;
      }
    } catch (err) {
      const detail = err instanceof Error ? `${err.name}: ${err.message}` : typeof err;
      this.#report(
        new KubeError({
          kind: "Unknown",
          message: `informer ${this.#name}: ${change.type} handler threw ${detail}`,
        }),
      );
    }
  }

  /** Backoff before the next list after `error`, at least as long as the server asked for. */
  #retryDelay(error: KubeError): number {
    const delay = backoffDelay(this.#backoff, this.#failures);
    this.#failures += 1;
    return Math.max(delay, (error.retryAfterSeconds ?? 0) * 1000);
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#clock.setTimer(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        this.#clock.clearTimer(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #report(error: KubeError): void {
    this.#hook(() => this.#hooks.onError?.(error));
  }

  #isStopped(): boolean {
    return this.#stopped;
  }

  #hook(call: () => void): void {
    try {
      call();
    } catch (err) {
      // Hooks feed logs and metrics; a failing one must not stop the informer, and reporting it
      // through another hook could fail the same way, so it goes to Node's warning channel.
      const detail = err instanceof Error ? `${err.name}: ${err.message}` : typeof err;
      process.emitWarning(`informer ${this.#name}: a hook threw ${detail}`);
    }
  }
}

interface ValidatedOptions {
  pageSize: number;
  watchTimeoutSeconds: number;
  stallGraceMs: number;
  backoff: BackoffOptions;
}

function validateOptions(name: string, options: ValidatedOptions): void {
  const fail = (detail: string): never => {
    throw new RangeError(`informer ${name}: ${detail}`);
  };
  if (!Number.isInteger(options.pageSize) || options.pageSize < 1) {
    fail(`pageSize must be a positive integer, got ${options.pageSize}`);
  }
  if (!Number.isInteger(options.watchTimeoutSeconds) || options.watchTimeoutSeconds < 1) {
    fail(`watchTimeoutSeconds must be a positive integer, got ${options.watchTimeoutSeconds}`);
  }
  if (!(options.stallGraceMs >= 0)) fail(`stallGraceMs must be >= 0, got ${options.stallGraceMs}`);
  if (!(options.backoff.baseMs > 0) || !(options.backoff.maxMs >= options.backoff.baseMs)) {
    fail(
      `backoff needs 0 < baseMs <= maxMs, got baseMs=${options.backoff.baseMs} maxMs=${options.backoff.maxMs}`,
    );
  }
}

/** `base` stretched by a random factor in [1, 1 + spread), so replicas do not act in lockstep. */
function jittered(base: number, spread: number): number {
  return base * (1 + Math.random() * spread);
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("waiting for the informer's first list was aborted");
}
