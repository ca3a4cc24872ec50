// reconcile(name): re-read the ECRPullSecret from the cache, resolve its spec, get the token
// content, plan (pure), write the differences with bounded concurrency, report status.
// Level-triggered: every call computes from the current state, whatever event caused it.
import type { V1ServiceAccount } from "@kubernetes/client-node";
import {
  API_VERSION,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type ECRPullSecret,
  type ECRPullSecretStatus,
  type NamespaceFailure,
} from "../api/types.ts";
import type { Clock } from "../clock.ts";
import { mapLimit } from "../kube/concurrency.ts";
import { classifyKubeError } from "../kube/errors.ts";
import { clusterPath, type KubeClient } from "../kube/rest.ts";
import type { EventRecorder, EventTarget } from "../kube/events.ts";
import type { WorkResult } from "../kube/workqueue.ts";
import type { Logger } from "../observability/logger.ts";
import type { Observer, ReconcileResult } from "../observability/observer.ts";
import type { ClusterCache } from "./cluster-cache.ts";
import type { ContentResult, ContentSource } from "./content.ts";
import {
  existingContent,
  emptyPlan,
  planCleanup,
  planPullSecrets,
  type Owner,
  type Plan,
} from "./plan/desired.ts";
import { FINALIZER } from "./plan/labels.ts";
import type { SpecResolver } from "./spec-resolver.ts";
import { planSweep } from "./plan/sweep.ts";
import { buildStatus, isoSeconds, sameStatus, statusPatch, type Outcome } from "./plan/status.ts";
import { isSpecProblem } from "./plan/spec.ts";
import { WriteFailure, type PullSecretWriter } from "./writer.ts";

/** What one reconcile of a CR found and did, for metrics, `once` summaries and dry runs. */
export interface ReconcileReport {
  name: string;
  status: ECRPullSecretStatus;
  plan: Plan | undefined;
  /** ServiceAccounts in target namespaces that list the Secret. */
  serviceAccountsSynced: number;
}

export interface ReconcilerDeps {
  cache: ClusterCache;
  specs: SpecResolver;
  content: ContentSource;
  writer: PullSecretWriter;
  kube: KubeClient;
  events: EventRecorder;
  clock: Clock;
  log: Logger;
  /** Writes in flight at once across namespaces for one CR. */
  writeConcurrency: number;
  /** Shortest delay before a CR is looked at again, so nothing hot-loops. */
  minRequeueMs: number;
  /** When namespaces are in conflict, look again after this long. */
  conflictRequeueMs: number;
  observer: Observer;
  /** False while this replica must not write (not the leader); writes then wait for a retry. */
  canWrite: () => boolean;
  /** Plan only: the writer records instead of writing, and status and finalizers are left alone. */
  dryRun: boolean;
}

/** A reconcile that should be retried with backoff; the message is safe to log. */
export class RetryLater extends Error {
  override readonly name = "RetryLater";
}

const crPath = (name: string, subresource?: string): string =>
  clusterPath(`/apis/${GROUP}/${VERSION}`, PLURAL, name, subresource);

function eventTarget(cr: ECRPullSecret): EventTarget {
  return { apiVersion: API_VERSION, kind: KIND, name: cr.metadata.name ?? "", uid: cr.metadata.uid ?? "" };
}

export class Reconciler {
  private readonly deps: ReconcilerDeps;

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  private readonly reports = new Map<string, ReconcileReport>();

  /** The last report of a CR, if it was reconciled since start. */
  lastReport(name: string): ReconcileReport | undefined {
    return this.reports.get(name);
  }

  private ensureWritable(): void {
    if (!this.deps.canWrite()) {
      throw new RetryLater("not the leader: writes wait");
    }
  }

  /** Reconciles one CR by name; a thrown RetryLater or error means: retry with backoff. */
  async reconcile(name: string): Promise<WorkResult> {
    const started = performance.now();
    let result: ReconcileResult = "success";
    try {
      return await this.reconcileOnce(name);
    } catch (err) {
      result = err instanceof RetryLater ? "retry" : "error";
      throw err;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.deps.observer.observe({ type: "Reconciled", result, seconds });
    }
  }

  private async reconcileOnce(name: string): Promise<WorkResult> {
    let cr = this.deps.cache.ecrPullSecrets.get(name);
    if (cr === undefined) {
      if (this.reports.delete(name)) this.deps.observer.observe({ type: "CrGone", name });
      return {};
    }
    this.ensureWritable();
    const owner: Owner = { name, uid: cr.metadata.uid ?? "" };
    if (cr.metadata.deletionTimestamp !== undefined) {
      return this.cleanUp(cr, owner);
    }
    if (!(cr.metadata.finalizers ?? []).includes(FINALIZER) && !this.deps.dryRun) {
      cr = (await this.setFinalizers(cr, [...(cr.metadata.finalizers ?? []), FINALIZER])) ?? cr;
    }

    const spec = this.deps.specs.resolve(cr);
    if (isSpecProblem(spec)) {
      if (!this.deps.dryRun) this.deps.events.warning(eventTarget(cr), spec.reason, spec.message);
      await this.writeStatus(cr, { kind: "invalid", reason: spec.reason, message: spec.message });
      return {};
    }
    if (spec.suspend) {
      await this.writeStatus(cr, { kind: "suspended" });
      return {};
    }

    const view = this.deps.cache.viewFor(cr, (other) => this.deps.specs.resolved(other));
    const existing = existingContent(owner, spec, view);
    const result = await this.deps.content.contentFor(cr, spec, existing);
    const { content, problem } = result;
    const plan = planPullSecrets(owner, spec, view, content);
    const failures = await this.apply(plan, name);

    const failed = new Set(failures.map((f) => f.namespace));
    const synced = plan.desired.filter((ns) => !failed.has(ns) && content !== undefined).length;
    const writes = plan.secretWrites.length;
    const tokenTimes =
      content === undefined
        ? undefined
        : {
            expiresAt: content.expiresAt,
            refreshedAt: content.refreshedAt,
            nextRefreshAt:
              problem === undefined && result.refreshAt !== undefined
                ? new Date(result.refreshAt).toISOString()
                : undefined,
          };
    await this.writeStatus(
      cr,
      {
        kind: "reconciled",
        desired: plan.desired.length,
        synced,
        failures,
        token: tokenTimes,
        tokenProblem: problem,
        registries: result.registries,
      },
      { plan, serviceAccountsSynced: this.countServiceAccountsSynced(plan, spec.secretName) },
    );
    this.report(cr, plan, failures, result, writes);

    if (problem !== undefined) {
      throw new RetryLater(`${problem.reason}: ${problem.message}`);
    }
    if (failures.some((f) => f.retryable)) {
      throw new RetryLater(`${failures.length} namespaces failed to sync`);
    }
    const untilRefresh = (result.refreshAt ?? 0) - this.deps.clock.now();
    const delay = failures.length > 0 ? Math.min(untilRefresh, this.deps.conflictRequeueMs) : untilRefresh;
    return { requeueAfter: Math.max(this.deps.minRequeueMs, delay) };
  }

  private report(
    cr: ECRPullSecret,
    plan: Plan,
    failures: (NamespaceFailure & { retryable: boolean })[],
    result: ContentResult,
    writes: number,
  ): void {
    const target = eventTarget(cr);
    const log = this.deps.log.child({ cr: cr.metadata.name });
    if (result.problem !== undefined) {
      this.deps.events.warning(target, result.problem.reason, result.problem.message);
      log.warn(
        { reason: result.problem.reason, detail: result.problem.message },
        "token refresh failed; the last good entries are kept while they are valid",
      );
    }
    const expired = result.droppedEntries;
    if (expired.length > 0) {
      const removed = expired.map((r) => `${r.host}: ${r.problem?.message ?? "its token expired"}`);
      this.deps.events.warning(
        target,
        "RegistryTokenExpired",
        `removed from the pull Secrets, its token having expired: ${removed.join("; ")}`,
      );
      log.warn({ registries: expired.map((r) => r.host) }, "expired registry entries removed");
    }
    if (result.minted && writes > 0 && result.content !== undefined) {
      this.deps.events.normal(
        target,
        "TokenRefreshed",
        `wrote ${writes} Secrets; token expires at ${result.content.expiresAt}`,
      );
    }
    const conflicts = failures.filter((f) => f.reason === "SecretConflict");
    const others = failures.filter((f) => f.reason !== "SecretConflict");
    if (conflicts.length > 0) {
      this.deps.events.warning(target, "SecretConflict", summarise(conflicts));
    }
    if (others.length > 0) {
      this.deps.events.warning(target, "NamespaceFailures", summarise(others));
    }
    for (const failure of failures) {
      log.warn(
        { namespace: failure.namespace, reason: failure.reason, detail: failure.message },
        "namespace not synced",
      );
    }
    if (plan.secretWrites.length + plan.secretDeletes.length + plan.serviceAccountEdits.length > 0) {
      log.info(
        {
          secretsWritten: plan.secretWrites.length,
          secretsDeleted: plan.secretDeletes.length,
          serviceAccountsEdited: plan.serviceAccountEdits.length,
          desired: plan.desired.length,
          failed: failures.length,
        },
        "reconciled",
      );
    }
  }

  /** Applies a plan; returns one failure per namespace that did not sync. */
  private async apply(plan: Plan, owner: string): Promise<(NamespaceFailure & { retryable: boolean })[]> {
    const { cache, writer, writeConcurrency } = this.deps;
    const log = this.deps.log.child({ cr: owner });
    // Per object at debug: at info a refresh at 5,000 namespaces would log 5,000 lines and spend
    // about a tenth of its CPU on them; the "reconciled" line counts them.
    const done = (namespace: string, action: string, kind: string, name: string): void => {
      if (!this.deps.dryRun) log.debug({ namespace, action, kind, name }, `${kind} ${action}`);
    };
    const failures = new Map<string, NamespaceFailure & { retryable: boolean }>();
    const fail = (namespace: string, err: unknown): void => {
      if (failures.has(namespace)) {
        return;
      }
      const failure =
        err instanceof WriteFailure
          ? err
          : new WriteFailure("WriteFailed", classifyKubeError(err).message, true);
      this.deps.observer.observe({ type: "WriteFailed", reason: failure.reason });
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
      this.ensureWritable();
      cache.recordSecret(await writer.writeSecret(write));
      done(
        write.namespace,
        write.action === "create" ? "created" : "updated",
        "Secret",
        write.body.metadata.name,
      );
    });
    for (const r of secretResults) {
      if (r.status === "rejected") fail(r.item.namespace, r.reason);
    }
    // A ServiceAccount only gets the entry once its namespace has the Secret.
    const edits = plan.serviceAccountEdits.filter((e) => e.remove.length > 0 || !failures.has(e.namespace));
    const editResults = await mapLimit(edits, writeConcurrency, async (edit) => {
      this.ensureWritable();
      const cached: V1ServiceAccount | undefined = cache.serviceAccount(edit.namespace, edit.name);
      const updated = await writer.editServiceAccount(edit, cached);
      if (updated !== undefined) cache.recordServiceAccount(updated);
      const change = [...edit.add.map((n) => `added ${n}`), ...edit.remove.map((n) => `removed ${n}`)].join(
        ", ",
      );
      done(edit.namespace, change, "ServiceAccount", edit.name);
    });
    for (const r of editResults) {
      if (r.status === "rejected") fail(r.item.namespace, r.reason);
    }
    const deleteResults = await mapLimit(plan.secretDeletes, writeConcurrency, async (target) => {
      this.ensureWritable();
      await writer.deleteSecret(target);
      cache.recordSecretDeleted(target.namespace, target.name);
      done(target.namespace, "deleted", "Secret", target.name);
    });
    for (const r of deleteResults) {
      if (r.status === "rejected") fail(r.item.namespace, r.reason);
    }
    return [...failures.values()].sort((a, b) => a.namespace.localeCompare(b.namespace));
  }

  /** Removes what no live CR claims any more (see sweep.ts). */
  async sweep(): Promise<WorkResult> {
    this.ensureWritable();
    const { cache, specs } = this.deps;
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
    const failures = await this.apply({ ...emptyPlan(), ...sweep }, "(sweep)");
    this.deps.log.info(
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

  private async cleanUp(cr: ECRPullSecret, owner: Owner): Promise<WorkResult> {
    if (!(cr.metadata.finalizers ?? []).includes(FINALIZER)) {
      return {};
    }
    const plan = planCleanup(
      owner,
      this.deps.cache.viewFor(cr, () => undefined),
    );
    const failures = await this.apply(plan, owner.name);
    if (failures.length > 0) {
      throw new RetryLater(`clean-up failed in ${failures.length} namespaces: ${summarise(failures)}`);
    }
    this.deps.log.info(
      {
        cr: owner.name,
        secretsDeleted: plan.secretDeletes.length,
        serviceAccountsEdited: plan.serviceAccountEdits.length,
      },
      "cleaned up",
    );
    if (!this.deps.dryRun) {
      await this.setFinalizers(
        cr,
        (cr.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
      );
    }
    return {};
  }

  private async setFinalizers(cr: ECRPullSecret, finalizers: string[]): Promise<ECRPullSecret | undefined> {
    try {
      return await this.deps.kube.mergePatch<ECRPullSecret>(crPath(cr.metadata.name ?? ""), {
        metadata: { finalizers, resourceVersion: cr.metadata.resourceVersion },
      });
    } catch (err) {
      const error = classifyKubeError(err);
      if (error.kind !== "NotFound" && error.kind !== "Conflict") {
        throw error;
      }
      return undefined;
    }
  }

  private countServiceAccountsSynced(plan: Plan, secretName: string): number {
    let count = 0;
    for (const ns of plan.desired) {
      for (const sa of this.deps.cache.serviceAccountsIn(ns)) {
        if ((sa.imagePullSecrets ?? []).some((ref) => ref.name === secretName)) count += 1;
      }
    }
    return count;
  }

  private async writeStatus(
    cr: ECRPullSecret,
    outcome: Outcome,
    details: Omit<ReconcileReport, "name" | "status"> = { plan: undefined, serviceAccountsSynced: 0 },
  ): Promise<ECRPullSecretStatus> {
    const now = isoSeconds(this.deps.clock.now());
    const status = buildStatus(cr.status, cr.metadata.generation ?? 0, outcome, now);
    const report: ReconcileReport = { name: cr.metadata.name ?? "", status, ...details };
    this.reports.set(report.name, report);
    this.deps.observer.observe({
      type: "CrReported",
      name: report.name,
      status,
      serviceAccountsSynced: report.serviceAccountsSynced,
    });
    if (this.deps.dryRun || sameStatus(cr.status, status)) {
      return status;
    }
    try {
      await this.deps.kube.mergePatch(crPath(cr.metadata.name ?? "", "status"), {
        status: statusPatch(cr.status, status),
      });
    } catch (err) {
      const error = classifyKubeError(err);
      if (error.kind !== "NotFound") {
        throw error;
      }
    }
    return status;
  }
}

function summarise(failures: readonly NamespaceFailure[]): string {
  const shown = failures.slice(0, 3).map((f) => `${f.namespace}: ${f.message}`);
  const more = failures.length > 3 ? ` (and ${failures.length - 3} more)` : "";
  return `${failures.length} namespaces: ${shown.join("; ")}${more}`;
}
