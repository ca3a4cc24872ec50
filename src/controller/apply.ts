// Applies a plan through the writer: Secrets first, then ServiceAccount entries (an entry is added
// only where its Secret is in place), then deletions, each with bounded concurrency. What was
// written is recorded in the cache (read-your-writes). The result is one failure per namespace.
import type { V1ServiceAccount } from "@kubernetes/client-node";
import type { NamespaceFailure } from "../api/types.ts";
import { mapLimit } from "../kube/concurrency.ts";
import { classifyKubeError } from "../kube/errors.ts";
import type { Observer } from "../observability/observer.ts";
import type { ClusterCache } from "./cluster-cache.ts";
import type { Plan } from "./plan/desired.ts";
import { WriteFailure, type Writer } from "./writer.ts";
import { compareStrings } from "../order.ts";

/** A namespace that did not sync, and whether trying again may help. */
export type FailedNamespace = NamespaceFailure & { retryable: boolean };

export interface ApplyContext {
  cache: ClusterCache;
  writer: Writer;
  /** Writes in flight at once across namespaces. */
  writeConcurrency: number;
  observer: Observer;
}

/** Writes what `plan` says; its conflicts are failures from the start. */
export async function applyPlan(plan: Plan, context: ApplyContext): Promise<FailedNamespace[]> {
  const { cache, writer, writeConcurrency, observer } = context;
  const writes = plan.secretWrites.length + plan.serviceAccountEdits.length + plan.secretDeletes.length;
  if (writes > 0) observer.observe({ type: "WritesPlanned", writes });
  const failures = new Map<string, FailedNamespace>();
  const fail = (namespace: string, err: unknown): void => {
    if (failures.has(namespace)) {
      return;
    }
    const failure =
      err instanceof WriteFailure
        ? err
        : new WriteFailure("WriteFailed", classifyKubeError(err).message, true);
    observer.observe({ type: "WriteFailed", reason: failure.reason });
    failures.set(namespace, {
      namespace,
      reason: failure.reason,
      message: failure.message,
      retryable: failure.retryable,
    });
  };
  for (const conflict of plan.conflicts) {
    failures.set(conflict.namespace, { ...conflict, retryable: false });
  }

  const secretResults = await mapLimit(plan.secretWrites, writeConcurrency, async (write) => {
    cache.recordSecret(await writer.writeSecret(write));
  });
  for (const r of secretResults) {
    if (r.status === "rejected") fail(r.item.namespace, r.reason);
  }
  const edits = plan.serviceAccountEdits.filter((e) => e.remove.length > 0 || !failures.has(e.namespace));
  const editResults = await mapLimit(edits, writeConcurrency, async (edit) => {
    const cached: V1ServiceAccount | undefined = cache.serviceAccount(edit.namespace, edit.name);
    const updated = await writer.editServiceAccount(edit, cached);
    if (updated !== undefined) cache.recordServiceAccount(updated);
  });
  for (const r of editResults) {
    if (r.status === "rejected") fail(r.item.namespace, r.reason);
  }
  const deleteResults = await mapLimit(plan.secretDeletes, writeConcurrency, async (target) => {
    await writer.deleteSecret(target);
    cache.recordSecretDeleted(target.namespace, target.name);
  });
  for (const r of deleteResults) {
    if (r.status === "rejected") fail(r.item.namespace, r.reason);
  }
  return [...failures.values()].sort((a, b) => compareStrings(a.namespace, b.namespace));
}
