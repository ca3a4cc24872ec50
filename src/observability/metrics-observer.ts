// Turns the operator's observations into the metrics of metrics.ts: counters and histograms as they
// come, and the per-CR, per-registry and aggregate gauges from each CR's latest status.
import type { ECRPullSecretStatus } from "../api/types.ts";
import type { Metrics } from "./metrics.ts";
import type { Observation, Observer } from "./observer.ts";

interface CrTotals {
  synced: number;
  failed: number;
  serviceAccountsSynced: number;
  registries: string[];
}

export class MetricsObserver implements Observer {
  readonly #metrics: Metrics;
  readonly #perCr = new Map<string, CrTotals>();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  observe(observation: Observation): void {
    const metrics = this.#metrics;
    switch (observation.type) {
      case "QueueAdded":
        metrics.queueAdds.inc();
        return;
      case "QueueRetried":
        metrics.queueRetries.inc();
        return;
      case "QueueDepth":
        metrics.queueDepth.set(observation.depth);
        return;
      case "WatchRestarted":
        metrics.watchRestarts.inc({ resource: observation.resource, reason: observation.reason });
        return;
      case "ApiError":
        metrics.apiErrors.inc({ kind: observation.kind });
        return;
      case "AwsError":
        metrics.awsErrors.inc({ kind: observation.kind });
        return;
      case "TokenMinted":
        metrics.tokenMints.inc({ result: observation.result, region: observation.region });
        return;
      case "Reconciled":
        metrics.reconcileDuration.observe({ result: observation.result }, observation.seconds);
        metrics.reconciles.inc({ result: observation.result });
        return;
      case "CrReported":
        this.#reported(observation.name, observation.status, observation.serviceAccountsSynced);
        return;
      case "CrGone":
        this.#gone(observation.name);
        return;
      case "WriteFailed":
        metrics.writeFailures.inc({ reason: observation.reason });
        return;
      case "Leading":
        metrics.leader.set(observation.leading ? 1 : 0);
        return;
      case "WebhookAnswered":
        metrics.webhookRequests.inc({ result: observation.result });
        metrics.webhookDuration.observe(observation.seconds);
        return;
      case "PodMutated":
        metrics.webhookMutations.inc({ ecrpullsecret: observation.ecrPullSecret });
        return;
      case "WebhookCertificateServed":
        metrics.webhookCertificateExpiry.set(observation.notAfter / 1000);
        return;
      case "WritesPlanned":
        return;
    }
  }

  #reported(name: string, status: ECRPullSecretStatus, serviceAccountsSynced: number): void {
    const metrics = this.#metrics;
    const ready = status.conditions?.find((c) => c.type === "Ready");
    metrics.ready.set({ ecrpullsecret: name }, ready?.status === "True" ? 1 : 0);
    const registries = status.registries ?? [];
    const hosts = registries.map((r) => r.host);
    for (const registry of this.#perCr.get(name)?.registries ?? []) {
      if (!hosts.includes(registry)) this.#removeRegistry(name, registry);
    }
    for (const { host, tokenExpiresAt, lastError } of registries) {
      const labels = { ecrpullsecret: name, registry: host };
      const expires = Date.parse(tokenExpiresAt ?? "");
      if (Number.isNaN(expires)) metrics.tokenExpiry.remove(labels);
      else metrics.tokenExpiry.set(labels, expires / 1000);
      metrics.registryRefreshFailing.set(labels, lastError === undefined ? 0 : 1);
    }
    const desired = status.namespaces?.desired ?? 0;
    const synced = status.namespaces?.synced ?? 0;
    this.#perCr.set(name, { synced, failed: desired - synced, serviceAccountsSynced, registries: hosts });
    this.#publishTotals();
  }

  #gone(name: string): void {
    for (const registry of this.#perCr.get(name)?.registries ?? []) this.#removeRegistry(name, registry);
    this.#metrics.ready.remove({ ecrpullsecret: name });
    this.#perCr.delete(name);
    this.#publishTotals();
  }

  #removeRegistry(name: string, registry: string): void {
    this.#metrics.tokenExpiry.remove({ ecrpullsecret: name, registry });
    this.#metrics.registryRefreshFailing.remove({ ecrpullsecret: name, registry });
  }

  #publishTotals(): void {
    let synced = 0;
    let failed = 0;
    let serviceAccountsSynced = 0;
    for (const entry of this.#perCr.values()) {
      synced += entry.synced;
      failed += entry.failed;
      serviceAccountsSynced += entry.serviceAccountsSynced;
    }
    this.#metrics.managedSecrets.set({ state: "synced" }, synced);
    this.#metrics.managedSecrets.set({ state: "failed" }, failed);
    this.#metrics.managedServiceAccounts.set({ state: "synced" }, serviceAccountsSynced);
  }
}
