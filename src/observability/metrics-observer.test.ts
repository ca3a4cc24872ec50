import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ECRPullSecretStatus } from "../api/types.ts";
import { Metrics } from "./metrics.ts";
import { MetricsObserver } from "./metrics-observer.ts";
import { allOf, type Observation } from "./observer.ts";

const euWest = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const usEast = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

function status(ready: boolean, desired: number, synced: number, registries: string[]): ECRPullSecretStatus {
  return {
    conditions: [
      {
        type: "Ready",
        status: ready ? "True" : "False",
        reason: ready ? "Synced" : "PartiallySynced",
        message: "",
        lastTransitionTime: "2026-01-01T00:00:00Z",
      },
    ],
    namespaces: { desired, synced },
    registries: registries.map((host, i) => ({
      host,
      tokenExpiresAt: "2026-01-01T12:00:00Z",
      ...(i > 0 ? { lastError: { reason: "TokenRefreshFailed", message: "ServiceException" } } : {}),
    })),
  };
}

/** A gauge's samples as "label=value,... value" lines, sorted. */
async function samples(metric: {
  get(): Promise<{ values: { labels: object; value: number }[] }>;
}): Promise<string[]> {
  const { values } = await metric.get();
  return values
    .map(
      ({ labels, value }) =>
        `${Object.entries(labels)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(",")} ${value}`,
    )
    .sort();
}

function reported(name: string, crStatus: ECRPullSecretStatus, serviceAccountsSynced: number): Observation {
  return { type: "CrReported", name, status: crStatus, serviceAccountsSynced };
}

describe("MetricsObserver", () => {
  it("publishes each registry's token expiry and failing state, and drops a registry the CR stops listing", async () => {
    const metrics = new Metrics();
    const observer = new MetricsObserver(metrics);
    observer.observe(reported("team", status(true, 1, 1, [euWest, usEast]), 1));
    const expiry = Date.parse("2026-01-01T12:00:00Z") / 1000;
    assert.deepEqual(await samples(metrics.tokenExpiry), [
      `ecrpullsecret=team,registry=${euWest} ${expiry}`,
      `ecrpullsecret=team,registry=${usEast} ${expiry}`,
    ]);
    assert.deepEqual(await samples(metrics.registryRefreshFailing), [
      `ecrpullsecret=team,registry=${euWest} 0`,
      `ecrpullsecret=team,registry=${usEast} 1`,
    ]);
    observer.observe(reported("team", status(true, 1, 1, [euWest]), 1));
    assert.deepEqual(await samples(metrics.tokenExpiry), [`ecrpullsecret=team,registry=${euWest} ${expiry}`]);
    assert.deepEqual(await samples(metrics.registryRefreshFailing), [
      `ecrpullsecret=team,registry=${euWest} 0`,
    ]);
  });

  it("sums namespaces and ServiceAccounts over CRs, and forgets a CR once it is gone", async () => {
    const metrics = new Metrics();
    const observer = new MetricsObserver(metrics);
    observer.observe(reported("a", status(true, 3, 3, [euWest]), 3));
    observer.observe(reported("b", status(false, 4, 1, []), 1));
    assert.deepEqual(await samples(metrics.managedSecrets), ["state=failed 3", "state=synced 4"]);
    assert.deepEqual(await samples(metrics.managedServiceAccounts), ["state=synced 4"]);
    assert.deepEqual(await samples(metrics.ready), ["ecrpullsecret=a 1", "ecrpullsecret=b 0"]);

    observer.observe({ type: "CrGone", name: "a" });
    assert.deepEqual(await samples(metrics.managedSecrets), ["state=failed 3", "state=synced 1"]);
    assert.deepEqual(await samples(metrics.managedServiceAccounts), ["state=synced 1"]);
    assert.deepEqual(await samples(metrics.ready), ["ecrpullsecret=b 0"]);
    assert.deepEqual(await samples(metrics.tokenExpiry), []);
  });

  it("counts reconciles by result and times them", async () => {
    const metrics = new Metrics();
    const observer = new MetricsObserver(metrics);
    observer.observe({ type: "Reconciled", result: "success", seconds: 0.02 });
    observer.observe({ type: "Reconciled", result: "retry", seconds: 3 });
    observer.observe({ type: "Reconciled", result: "success", seconds: 0.04 });
    assert.deepEqual(await samples(metrics.reconciles), ["result=retry 1", "result=success 2"]);
    const text = await metrics.registry.getSingleMetricAsString(
      "ecr_creds_refresher_reconcile_duration_seconds",
    );
    assert.match(text, /reconcile_duration_seconds_count\{result="success"\} 2/);
    assert.match(text, /reconcile_duration_seconds_sum\{result="retry"\} 3/);
  });

  it("counts write failures by reason, apart from failed API calls by kind", async () => {
    const metrics = new Metrics();
    const observer = new MetricsObserver(metrics);
    observer.observe({ type: "WriteFailed", reason: "SecretConflict" });
    observer.observe({ type: "WriteFailed", reason: "SecretConflict" });
    observer.observe({ type: "ApiError", kind: "Forbidden" });
    assert.deepEqual(await samples(metrics.writeFailures), ["reason=SecretConflict 2"]);
    assert.deepEqual(await samples(metrics.apiErrors), ["kind=Forbidden 1"]);
  });

  it("says whether this replica leads", async () => {
    const metrics = new Metrics();
    const observer = new MetricsObserver(metrics);
    assert.deepEqual(await samples(metrics.leader), [" 0"]);
    observer.observe({ type: "Leading", leading: true });
    assert.deepEqual(await samples(metrics.leader), [" 1"]);
    observer.observe({ type: "Leading", leading: false });
    assert.deepEqual(await samples(metrics.leader), [" 0"]);
  });
});

describe("allOf", () => {
  it("hands every observation to each observer, in order", () => {
    const seen: string[] = [];
    const recorder = (name: string) => ({
      observe(observation: Observation) {
        seen.push(`${name}:${observation.type}`);
      },
    });
    const observer = allOf(recorder("a"), recorder("b"));
    observer.observe({ type: "WritesPlanned", writes: 3 });
    observer.observe({ type: "QueueAdded" });
    assert.deepEqual(seen, ["a:WritesPlanned", "b:WritesPlanned", "a:QueueAdded", "b:QueueAdded"]);
  });
});
