// Kubernetes Events on the operator's objects, aggregated: the same (object, type, reason,
// message) within the window is counted on one Event instead of creating another.
import type { Clock } from "../clock.ts";
import { classifyKubeError } from "./errors.ts";
import { namespacedPath, type KubeClient } from "./rest.ts";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  /** Empty for cluster-scoped objects; their Events go to `clusterScopedNamespace`. */
  namespace?: string;
}

export interface EventRecorder {
  normal(target: EventTarget, reason: string, message: string): void;
  warning(target: EventTarget, reason: string, message: string): void;
}

interface Seen {
  eventName: string;
  namespace: string;
  count: number;
  firstAt: number;
  lastPatchedAt: number;
}

export interface EventRecorderOptions {
  kube: KubeClient;
  clock: Clock;
  component: string;
  clusterScopedNamespace?: string;
  /** Repeats within this window are counted on the first Event. */
  windowMs?: number;
  /** At most one count update per Event within this interval. */
  patchIntervalMs?: number;
  onError?: (err: Error) => void;
}

const eventPath = (namespace: string, name?: string): string =>
  namespacedPath("/api/v1", namespace, "events", name);

export function createEventRecorder(options: EventRecorderOptions): EventRecorder {
  const { kube, clock, component } = options;
  const windowMs = options.windowMs ?? 10 * 60_000;
  const patchIntervalMs = options.patchIntervalMs ?? 60_000;
  const seen = new Map<string, Seen>();
  let sequence = 0;

  function prune(now: number): void {
    for (const [key, entry] of seen) {
      if (now - entry.firstAt > windowMs) {
        seen.delete(key);
      }
    }
  }

  function report(err: unknown): void {
    options.onError?.(classifyKubeError(err));
  }

  function record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    const now = clock.now();
    prune(now);
    const namespace = target.namespace ?? options.clusterScopedNamespace ?? "default";
    const key = `${target.uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const timestamp = new Date(now);
    const entry = seen.get(key);
    if (entry !== undefined) {
      entry.count += 1;
      if (now - entry.lastPatchedAt >= patchIntervalMs) {
        entry.lastPatchedAt = now;
        kube
          .mergePatch(eventPath(entry.namespace, entry.eventName), {
            count: entry.count,
            lastTimestamp: timestamp,
          })
          .catch(report);
      }
      return;
    }
    sequence += 1;
    const eventName = `${target.name}.${now.toString(16)}${sequence.toString(16)}`;
    seen.set(key, { eventName, namespace, count: 1, firstAt: now, lastPatchedAt: now });
    kube
      .create(eventPath(namespace), {
        metadata: { name: eventName, namespace },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.name,
          uid: target.uid,
          ...(target.namespace === undefined ? {} : { namespace: target.namespace }),
        },
        type,
        reason,
        message: message.slice(0, 1024),
        count: 1,
        firstTimestamp: timestamp,
        lastTimestamp: timestamp,
        source: { component },
      })
      .catch(report);
  }

  return {
    normal: (target, reason, message) => {
      record(target, "Normal", reason, message);
    },
    warning: (target, reason, message) => {
      record(target, "Warning", reason, message);
    },
  };
}
