// reconcile(name): re-read the ECRPullSecret from the cache, make sure of its finalizer, resolve its
// spec, read the Secrets whose content the cache does not know, get the token content, plan (pure),
// apply the differences, then build, record and write the status and tell what happened in Events.
// Level-triggered: every call computes from the current state, whatever event caused it. Every
// write goes through the writer.
//
// A CR queued only because something changed in a few namespaces (a new Namespace, its
// ServiceAccount, a managed Secret edited by hand) is planned over those namespaces alone, with the
// content the last full pass wrote everywhere else, as long as that pass left nothing to retry with
// backoff and nothing about the CR or its tokens has changed since. Its status, which counts every
// namespace, waits for a full pass, due at most `fullPassDelayMs` after the first such reconcile.
import type { V1Secret } from "@kubernetes/client-node";
import type { ECRPullSecret, ECRPullSecretStatus, NamespaceFailure } from "../api/types.ts";
import { API_VERSION, KIND } from "../api/types.ts";
import type { Clock } from "../clock.ts";
import { mapLimit } from "../kube/concurrency.ts";
import { classifyKubeError } from "../kube/errors.ts";
import type { EventTarget } from "../kube/events.ts";
import type { WorkResult } from "../kube/workqueue.ts";
import type { Logger } from "../observability/logger.ts";
import type { Observer, ReconcileResult } from "../observability/observer.ts";
import { applyPlan, type FailedNamespace } from "./apply.ts";
import type { ClusterCache } from "./cluster-cache.ts";
import type { ContentResult, ContentSource } from "./content.ts";
import { PassScopes } from "./pass-scope.ts";
import {
  existingContent,
  planCleanup,
  planPullSecrets,
  type Owner,
  type Plan,
  type SecretContent,
} from "./plan/desired.ts";
import { FINALIZER } from "./plan/labels.ts";
import { isSpecProblem } from "./plan/spec.ts";
import { buildStatus, isoSeconds, sameStatus, type Outcome } from "./plan/status.ts";
import { RetryLater } from "./retry-later.ts";
import type { SpecResolver } from "./spec-resolver.ts";
import type { Writer } from "./writer.ts";

/**
 * What one reconcile of a CR found and did, for `once` summaries and dry runs. It is kept until the
 * CR's next reconcile, so it holds no plan: after a converge that would be a Secret body per namespace.
 */
export interface ReconcileReport {
  name: string;
  status: ECRPullSecretStatus;
  /** ServiceAccounts in target namespaces that list the Secret. */
  serviceAccountsSynced: number;
}

export interface ReconcilerDeps {
  cache: ClusterCache;
  /** A managed Secret as the API server holds it, or undefined when there is none. */
  readSecret: (namespace: string, name: string) => Promise<V1Secret | undefined>;
  /** The managed Secrets a CR owns, whole, a page at a time. */
  ownedSecretPages: (owner: string) => AsyncIterable<V1Secret[]>;
  specs: SpecResolver;
  content: ContentSource;
  writer: Writer;
  clock: Clock;
  log: Logger;
  observer: Observer;
  /** Writes in flight at once across namespaces for one CR. */
  writeConcurrency: number;
  /** Shortest delay before a CR is looked at again, so nothing hot-loops. */
  minRequeueMs: number;
  /** When namespaces are in conflict, look again after this long. */
  conflictRequeueMs: number;
  /** Longest wait for a full pass (and the status it writes) after a pass over a few namespaces. */
  fullPassDelayMs: number;
}

/** What the last full pass of a CR wrote everywhere; kept only when it left nothing to retry with backoff. */
interface FullPass {
  uid: string;
  generation: number | undefined;
  secretName: string;
  content: SecretContent;
  /** When a token is due for refresh: a full pass then. */
  refreshAt: number;
  /** When the next full pass is due, once a pass over a few namespaces has run. */
  dueAt: number | undefined;
}

function eventTarget(cr: ECRPullSecret): EventTarget {
  return { apiVersion: API_VERSION, kind: KIND, name: cr.metadata.name ?? "", uid: cr.metadata.uid ?? "" };
}

/** Secrets of unknown content beyond which the CR's own are listed instead of read one by one. */
const listedOverRead = 50;

export class Reconciler {
  private readonly deps: ReconcilerDeps;
  private readonly reports = new Map<string, ReconcileReport>();
  private readonly scopes = new PassScopes();
  private readonly fullPasses = new Map<string, FullPass>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  /** Notes a change in `namespace` for the CR `name`, before it is queued. */
  touch(name: string, namespace: string): void {
    this.scopes.touch(name, namespace);
  }

  /**
   * Whether a change to a CR is its status alone, set to the status this operator last built for
   * it: the echo of its own status write, which needs no reconcile. Compared by content, since the
   * watch may bring the write before its answer does.
   */
  isOwnStatus(cr: ECRPullSecret, old: ECRPullSecret): boolean {
    const report = this.reports.get(cr.metadata.name ?? "");
    return (
      report !== undefined &&
      cr.status !== undefined &&
      statusAlone(cr, old) &&
      sameStatus(cr.status, report.status)
    );
  }

  /** Notes that the CR `name` needs a pass over every namespace, before it is queued. */
  requestFullPass(name: string): void {
    this.scopes.full(name);
  }

  /** The last report of a CR, if it was reconciled since start. */
  lastReport(name: string): ReconcileReport | undefined {
    return this.reports.get(name);
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
    const { cache, specs, content, writer } = this.deps;
    const scope = this.scopes.take(name);
    const found = cache.ecrPullSecrets.get(name);
    if (found === undefined) {
      this.scopes.forget(name);
      this.fullPasses.delete(name);
      if (this.reports.delete(name)) this.deps.observer.observe({ type: "CrGone", name });
      return {};
    }
    writer.ensureWritable();
    const owner: Owner = { name, uid: found.metadata.uid ?? "" };
    if (found.metadata.deletionTimestamp !== undefined) {
      this.fullPasses.delete(name);
      return this.finalize(found, owner);
    }
    const cr = await this.addFinalizer(found);
    const last = this.fullPasses.get(name);
    if (scope !== undefined && last !== undefined && this.canScope(cr, last)) {
      const done = await this.reconcileScoped(cr, last, scope);
      if (done !== undefined) return done;
    }
    this.fullPasses.delete(name);

    const spec = specs.resolve(cr);
    if (isSpecProblem(spec)) {
      writer.events.warning(eventTarget(cr), spec.reason, spec.message);
      await this.updateStatus(cr, { kind: "invalid", reason: spec.reason, message: spec.message });
      return {};
    }
    if (spec.suspend) {
      await this.updateStatus(cr, { kind: "suspended" });
      return {};
    }

    await this.readUnknownSecrets(owner, spec.secretName);
    const view = cache.viewFor(cr, (other) => specs.resolved(other));
    const result = await content.contentFor(spec, existingContent(owner, spec, view));
    const plan = planPullSecrets(owner, spec, view, result.content);
    const failures = await applyPlan(plan, this.deps);

    await this.updateStatus(cr, reconciledOutcome(plan, failures, result), {
      serviceAccountsSynced: this.countServiceAccountsSynced(plan, spec.secretName),
    });
    this.tell(cr, plan, failures, result);
    // Past nextReconcile, no failure is to be retried with backoff: at most conflicts, looked at later.
    const next = this.nextReconcile(failures, result);
    if (result.content !== undefined && result.refreshAt !== undefined) {
      this.fullPasses.set(name, {
        uid: owner.uid,
        generation: cr.metadata.generation,
        secretName: spec.secretName,
        content: result.content,
        refreshAt: result.refreshAt,
        dueAt: undefined,
      });
    }
    return next;
  }

  /** Whether the last full pass still holds for this CR: same object, same spec, tokens not due. */
  private canScope(cr: ECRPullSecret, last: FullPass): boolean {
    return (
      last.uid === (cr.metadata.uid ?? "") &&
      last.generation === cr.metadata.generation &&
      this.deps.clock.now() < Math.min(last.refreshAt, last.dueAt ?? Number.POSITIVE_INFINITY)
    );
  }

  /**
   * Plans the namespaces in `scope` alone, with the content the last full pass wrote everywhere.
   * Undefined when a full pass is needed after all: the spec no longer resolves the same way, or a
   * namespace is in conflict or failed (the full pass retries it and reports it in the status).
   */
  private async reconcileScoped(
    cr: ECRPullSecret,
    last: FullPass,
    scope: ReadonlySet<string>,
  ): Promise<WorkResult | undefined> {
    const { cache, specs, clock } = this.deps;
    const spec = specs.resolve(cr);
    if (isSpecProblem(spec) || spec.suspend || spec.secretName !== last.secretName) return undefined;
    const owner: Owner = { name: cr.metadata.name ?? "", uid: last.uid };
    await this.readUnknownSecrets(owner, spec.secretName, scope);
    const view = cache.viewFor(cr, (other) => specs.resolved(other), scope);
    const plan = planPullSecrets(owner, spec, view, last.content);
    if (plan.conflicts.length > 0) return undefined;
    const failures = await applyPlan(plan, this.deps);
    if (failures.length > 0) return undefined;
    const now = clock.now();
    last.dueAt ??= now + this.deps.fullPassDelayMs;
    this.logWrites(owner.name, plan, { namespacesLookedAt: scope.size });
    return { requeueAfter: Math.max(0, Math.min(last.dueAt, last.refreshAt) - now) };
  }

  /**
   * Reads the Secrets the plan looks at whose content the cache does not know: the API server sends
   * the managed Secrets' metadata alone, and the plan compares their content. Of those whose data
   * only the operator wrote, one per content digest tells the rest (a restart reads one Secret per
   * CR). Many others, as after an upgrade from a release that wrote no digest, are the CR's own:
   * one paged list reads them. The few left are read one by one. Most reconciles read nothing.
   */
  private async readUnknownSecrets(
    owner: Owner,
    secretName: string,
    within?: ReadonlySet<string>,
  ): Promise<void> {
    const { cache } = this.deps;
    const unknown = (): V1Secret[] =>
      cache.completeVouched(cache.secretsOfUnknownContent(owner.name, secretName, within));
    let left = unknown();
    if (left.length === 0) return;
    await this.readSecrets(cache.vouchedSamples(left));
    left = unknown();
    if (left.length > listedOverRead) {
      try {
        for await (const page of this.deps.ownedSecretPages(owner.name)) {
          for (const secret of page) cache.recordSecret(secret);
        }
      } catch (err) {
        throw new RetryLater(
          `could not list the Secrets of ${owner.name}: ${classifyKubeError(err).message}`,
        );
      }
      left = unknown();
    }
    await this.readSecrets(left);
  }

  private async readSecrets(secrets: readonly V1Secret[]): Promise<void> {
    const { cache, readSecret, writeConcurrency } = this.deps;
    const results = await mapLimit(secrets, writeConcurrency, async (secret) => {
      const { namespace = "", name = "" } = secret.metadata ?? {};
      const current = await readSecret(namespace, name);
      if (current === undefined) cache.recordSecretDeleted(namespace, name);
      else cache.recordSecret(current);
    });
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length > 0) {
      const first = classifyKubeError(failed[0]?.reason).message;
      throw new RetryLater(`could not read ${failed.length} Secrets: ${first}`);
    }
  }

  /** When to look at the CR again: at the next refresh, sooner after conflicts, with backoff after failures. */
  private nextReconcile(failures: readonly FailedNamespace[], result: ContentResult): WorkResult {
    const { problem } = result;
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

  private async addFinalizer(cr: ECRPullSecret): Promise<ECRPullSecret> {
    const finalizers = cr.metadata.finalizers ?? [];
    if (finalizers.includes(FINALIZER)) return cr;
    return (await this.deps.writer.setFinalizers(cr, [...finalizers, FINALIZER])) ?? cr;
  }

  /** A CR being deleted: remove its Secrets and the entries it added, then let it go. */
  private async finalize(cr: ECRPullSecret, owner: Owner): Promise<WorkResult> {
    const finalizers = cr.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) {
      return {};
    }
    const plan = planCleanup(
      owner,
      this.deps.cache.viewFor(cr, () => undefined),
    );
    const failures = await applyPlan(plan, this.deps);
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
    await this.deps.writer.setFinalizers(
      cr,
      finalizers.filter((f) => f !== FINALIZER),
    );
    return {};
  }

  /** Builds the status, records it for `once` and the metrics, and writes it when it changed. */
  private async updateStatus(
    cr: ECRPullSecret,
    outcome: Outcome,
    details: Omit<ReconcileReport, "name" | "status"> = { serviceAccountsSynced: 0 },
  ): Promise<void> {
    const status = buildStatus(
      cr.status,
      cr.metadata.generation ?? 0,
      outcome,
      isoSeconds(this.deps.clock.now()),
    );
    this.record({ name: cr.metadata.name ?? "", status, ...details });
    if (!sameStatus(cr.status, status)) {
      await this.deps.writer.writeStatus(cr, status);
    }
  }

  private record(report: ReconcileReport): void {
    this.reports.set(report.name, report);
    this.deps.observer.observe({
      type: "CrReported",
      name: report.name,
      status: report.status,
      serviceAccountsSynced: report.serviceAccountsSynced,
    });
  }

  /** Tells what this reconcile did and what went wrong, in Events on the CR and in the log. */
  private tell(
    cr: ECRPullSecret,
    plan: Plan,
    failures: readonly FailedNamespace[],
    result: ContentResult,
  ): void {
    const { events } = this.deps.writer;
    const target = eventTarget(cr);
    const log = this.deps.log.child({ cr: cr.metadata.name });
    if (result.problem !== undefined) {
      events.warning(target, result.problem.reason, result.problem.message);
      log.warn(
        { reason: result.problem.reason, detail: result.problem.message },
        "token refresh failed; the last good entries are kept while they are valid",
      );
    }
    const expired = result.droppedEntries;
    if (expired.length > 0) {
      const removed = expired.map((r) => `${r.host}: ${r.problem?.message ?? "its token expired"}`);
      events.warning(
        target,
        "RegistryTokenExpired",
        `removed from the pull Secrets, its token having expired: ${removed.join("; ")}`,
      );
      log.warn({ registries: expired.map((r) => r.host) }, "expired registry entries removed");
    }
    const writes = plan.secretWrites.length;
    if (result.minted && writes > 0 && result.content !== undefined) {
      events.normal(
        target,
        "TokenRefreshed",
        `wrote ${writes} Secrets; token expires at ${result.content.expiresAt}`,
      );
    }
    const conflicts = failures.filter((f) => f.reason === "SecretConflict");
    const others = failures.filter((f) => f.reason !== "SecretConflict");
    if (conflicts.length > 0) {
      events.warning(target, "SecretConflict", summarise(conflicts));
    }
    if (others.length > 0) {
      events.warning(target, "NamespaceFailures", summarise(others));
    }
    for (const failure of failures) {
      log.warn(
        { namespace: failure.namespace, reason: failure.reason, detail: failure.message },
        "namespace not synced",
      );
    }
    this.logWrites(cr.metadata.name ?? "", plan, { desired: plan.desired.length, failed: failures.length });
  }

  /** Logs what a pass wrote, if anything; `counts` say what it looked at. */
  private logWrites(name: string, plan: Plan, counts: Record<string, number>): void {
    if (plan.secretWrites.length + plan.secretDeletes.length + plan.serviceAccountEdits.length > 0) {
      this.deps.log.info(
        {
          cr: name,
          secretsWritten: plan.secretWrites.length,
          secretsDeleted: plan.secretDeletes.length,
          serviceAccountsEdited: plan.serviceAccountEdits.length,
          ...counts,
        },
        "reconciled",
      );
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
}

/** Whether `cr` differs from `old` in nothing a reconcile reads but the status. */
function statusAlone(cr: ECRPullSecret, old: ECRPullSecret): boolean {
  const a = cr.metadata;
  const b = old.metadata;
  return (
    a.uid === b.uid &&
    a.generation === b.generation &&
    a.deletionTimestamp === b.deletionTimestamp &&
    (a.finalizers ?? []).join(",") === (b.finalizers ?? []).join(",")
  );
}

/** What a reconcile that got as far as writing found: namespaces synced, the tokens and failures. */
function reconciledOutcome(plan: Plan, failures: readonly FailedNamespace[], result: ContentResult): Outcome {
  const { content, problem } = result;
  const failed = new Set(failures.map((f) => f.namespace));
  return {
    kind: "reconciled",
    desired: plan.desired.length,
    synced: plan.desired.filter((ns) => !failed.has(ns) && content !== undefined).length,
    failures: [...failures],
    token:
      content === undefined
        ? undefined
        : {
            expiresAt: content.expiresAt,
            refreshedAt: content.refreshedAt,
            nextRefreshAt:
              problem === undefined && result.refreshAt !== undefined
                ? new Date(result.refreshAt).toISOString()
                : undefined,
          },
    tokenProblem: problem,
    registries: result.registries,
  };
}

function summarise(failures: readonly NamespaceFailure[]): string {
  const shown = failures.slice(0, 3).map((f) => `${f.namespace}: ${f.message}`);
  const more = failures.length > 3 ? ` (and ${failures.length - 3} more)` : "";
  return `${failures.length} namespaces: ${shown.join("; ")}${more}`;
}
