// One watch request, from opening to how it ended: the response is read line by line, each event is
// handed to the informer, and the way the watch ends (closed, expired, error, stalled or stopped)
// tells the informer whether to watch again, list again or back off.

import type { IncomingMessage } from "node:http";
import type { KubernetesObject } from "@kubernetes/client-node";

import type { Clock } from "../../clock.ts";
import { classifyKubeError, KubeError } from "../errors.ts";
import { closedEarly } from "../http1.ts";
import { parseJson, readBody } from "../rest.ts";
import type { KubeClient } from "../rest.ts";
import { resourceVersionOf } from "./object-store.ts";
import { StallWatchdog } from "./stall-watchdog.ts";
import { httpError, parseWatchEvent } from "./wire-format.ts";

/** How one watch request ended, and so what the informer does next. */
export type WatchEnd =
  | { kind: "closed" }
  | { kind: "expired" }
  | { kind: "error"; error: KubeError }
  | { kind: "stalled" }
  | { kind: "stopped" };

export type WatchChangeType = "ADDED" | "MODIFIED" | "DELETED";

export interface WatchRequest {
  /** The collection, for messages. */
  name: string;
  client: KubeClient;
  path: string;
  /** The label and field selectors. */
  selectors: URLSearchParams;
  /** The watch starts after this version. */
  resourceVersion: string;
  /** The server ends the watch after this long. */
  timeoutSeconds: number;
  /** A watch that sends nothing for its timeout plus this grace is stalled. */
  stallGraceMs: number;
  clock: Clock;
  /** The Accept header: whole objects as JSON unless set. */
  accept?: string;
}

export interface WatchHandlers {
  /** Data arrived: response headers, a chunk of events or of an error body. */
  onData(): void;
  /** An object was added, modified or deleted; a handler that throws ends the watch with an error. */
  onChange(type: WatchChangeType, object: KubernetesObject): void;
  /** The server has sent everything up to `resourceVersion`. */
  onBookmark(resourceVersion: string | undefined): void;
}

/** A watch closed sooner than this without a single event is treated as a failure, as client-go does. */
const shortWatchMs = 1000;

export class WatchStream {
  /** How the watch ended; never rejects. */
  readonly ended: Promise<WatchEnd>;
  readonly #request: WatchRequest;
  readonly #handlers: WatchHandlers;
  readonly #resolve: (end: WatchEnd) => void;
  readonly #controller = new AbortController();
  readonly #startedAt: number;
  readonly #watchdog: StallWatchdog;
  #events = 0;
  /** What followed the last newline: the start of a line still arriving. */
  #pending = "";
  #done = false;
  #response: IncomingMessage | undefined;

  /** Opens the watch at once. */
  constructor(request: WatchRequest, handlers: WatchHandlers) {
    this.#request = request;
    this.#handlers = handlers;
    const { promise, resolve } = Promise.withResolvers<WatchEnd>();
    this.ended = promise;
    this.#resolve = resolve;
    this.#startedAt = request.clock.now();
    const stallLimitMs = request.timeoutSeconds * 1000 + request.stallGraceMs;
    this.#watchdog = new StallWatchdog(request.clock, stallLimitMs, () => {
      this.#end({ kind: "stalled" });
    });
    this.#open();
  }

  /** Ends the watch because the informer stops. */
  stop(): void {
    this.#end({ kind: "stopped" });
  }

  #open(): void {
    const { client, path, selectors, resourceVersion, timeoutSeconds, accept } = this.#request;
    const query = new URLSearchParams(selectors);
    query.set("watch", "true");
    query.set("allowWatchBookmarks", "true");
    query.set("resourceVersion", resourceVersion);
    query.set("timeoutSeconds", String(timeoutSeconds));
    client.open(path, query, this.#controller.signal, accept).then(
      (response) => {
        this.#onResponse(response);
      },
      (err: unknown) => {
        this.#fail(err);
      },
    );
  }

  #onResponse(response: IncomingMessage): void {
    if (this.#done) {
      response.destroy();
      return;
    }
    this.#response = response;
    this.#onData();
    if (response.statusCode !== 200) {
      this.#readRefusal(response);
      return;
    }
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      this.#onChunk(chunk);
    });
    response.on("end", () => {
      this.#onEnd();
    });
    response.on("error", (err) => {
      this.#fail(err);
    });
    response.on("close", () => {
      this.#end({ kind: "error", error: closedEarly(`watch of ${this.#request.name}`) });
    });
  }

  /** A status other than 200: the watch ends with the error the body describes. */
  #readRefusal(response: IncomingMessage): void {
    readBody(response, () => {
      this.#onData();
    }).then(
      (body) => {
        this.#end(endFor(httpError(response, body)));
      },
      (err: unknown) => {
        this.#fail(err);
      },
    );
  }

  #onChunk(chunk: string): void {
    if (this.#done) return;
    this.#onData();
    // Only a chunk with a newline completes a line; an object larger than a chunk is not re-split.
    const lastNewline = chunk.lastIndexOf("\n");
    if (lastNewline === -1) {
      this.#pending += chunk;
      return;
    }
    const lines = (this.#pending + chunk.slice(0, lastNewline)).split("\n");
    this.#pending = chunk.slice(lastNewline + 1);
    this.#applyLines(lines);
  }

  /** The server ended the response, normally at its timeout. */
  #onEnd(): void {
    this.#applyLines([this.#pending]);
    if (this.#done) return;
    this.#onData();
    const lastedMs = this.#request.clock.now() - this.#startedAt;
    if (this.#events === 0 && lastedMs < shortWatchMs) {
      const message = `watch of ${this.#request.name} closed after ${lastedMs} ms without any event`;
      this.#end({ kind: "error", error: new KubeError({ kind: "Unavailable", message }) });
      return;
    }
    this.#end({ kind: "closed" });
  }

  #applyLines(lines: string[]): void {
    for (const line of lines) {
      if (this.#done) return;
      if (line.trim() === "") continue;
      let end: WatchEnd | undefined;
      try {
        end = this.#applyLine(line);
      } catch (err) {
        end = { kind: "error", error: classifyKubeError(err) };
      }
      if (end !== undefined) {
        this.#end(end);
        return;
      }
      this.#events += 1;
    }
  }

  /** Hands one event to the informer; returns how the watch ends if the event ends it. */
  #applyLine(line: string): WatchEnd | undefined {
    const { name } = this.#request;
    const event = parseWatchEvent(parseJson(line, `watch of ${name}`), name);
    switch (event.type) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED":
        this.#handlers.onChange(event.type, event.object);
        return undefined;
      case "BOOKMARK":
        this.#handlers.onBookmark(resourceVersionOf(event.object));
        return undefined;
      case "ERROR":
        return endFor(classifyKubeError(event.object));
      default:
        return {
          kind: "error",
          error: new KubeError({
            kind: "Unknown",
            message: `watch of ${name} sent an event of unknown type ${JSON.stringify(event.type)}`,
          }),
        };
    }
  }

  #onData(): void {
    this.#watchdog.feed();
    this.#handlers.onData();
  }

  #fail(err: unknown): void {
    this.#end({ kind: "error", error: classifyKubeError(err) });
  }

  #end(end: WatchEnd): void {
    if (this.#done) return;
    this.#done = true;
    this.#watchdog.stop();
    // A response read to its end has nothing left to abort, and its socket may be back in the
    // keep-alive pool, where an abort would destroy it with an error no one listens for.
    if (this.#response?.complete !== true) this.#controller.abort();
    this.#resolve(end);
  }
}

/** A 410 Gone means the watch's resourceVersion is too old: the informer lists again. */
function endFor(error: KubeError): WatchEnd {
  return error.kind === "Gone" ? { kind: "expired" } : { kind: "error", error };
}
