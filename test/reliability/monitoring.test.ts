// The chart's alerts and dashboard on a real Prometheus during an AWS outage: Prometheus scrapes
// the operator process on loopback through a file-based scrape config, with the labels the chart's
// ServiceMonitor would give, and evaluates the rules rendered from the chart. AWS reports 8-minute
// tokens (the shortest lifetime the operator takes as real is 5 minutes) and the CR refreshes every
// minute, so the token runs out within minutes once AWS fails.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { EXPIRES_AT_ANNOTATION, MANAGED_SECRETS_SELECTOR } from "../../src/controller/plan/labels.ts";
import { createPullSecretCr, startOperatorEnv, type OperatorEnv } from "../harness/operator-env.ts";
import { stopStarted } from "../harness/processes.ts";
import {
  chartMonitoring,
  dashboardVariables,
  panelQueries,
  startPrometheus,
  type ChartMonitoring,
  type Prometheus,
  type PromAlert,
} from "../harness/prometheus.ts";
import { eventually } from "../harness/wait.ts";
import { createNamespaces, startOperatorAs, waitForCr, type RunningOperator } from "./fixtures.ts";
import { assertNoLeaks, secretValues } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween, type Figures } from "./results.ts";
import { byScale, isFull } from "./scale.ts";

const crName = "alerts";
const secretName = "alerts-pull";
const namespaceCount = byScale(5, 20);
const tokenLifetimeMs = 8 * 60_000;
const refreshInterval = "1m";
/**
 * Above the alert's fixed 5-minute `for` plus scrape and evaluation delays, so that it can fire
 * before the token expires; below the 7 minutes a token has left when it is refreshed, so that it
 * stays quiet while refreshes work.
 */
const tokenExpiryThresholdSeconds = 390;
/** Short, so that the scenario is about the rules, not the waiting; npm test waits even less. */
const failingFor = byScale("20s", "1m");
const tokenCall = "ecr:GetAuthorizationToken";
/** The workqueue's retry backoff cap: recovery comes with the next retry, at most this much later. */
const backoffCapSeconds = 300;
/** RefreshFailing's rate window: it resolves this long after the last failed call. */
const refreshFailingWindowSeconds = 600;

const alertNames = {
  expiringSoon: "ECRPullSecretTokenExpiringSoon",
  refreshFailing: "ECRPullSecretRefreshFailing",
  notReady: "ECRPullSecretNotReady",
  down: "ECRCredsRefresherDown",
} as const;

describe("the chart's alerts and dashboard on a real Prometheus", () => {
  let env: OperatorEnv | undefined;
  let operator: RunningOperator | undefined;
  let prometheus: Prometheus | undefined;
  let monitoring: ChartMonitoring;
  const logs: string[] = [];

  before(async () => {
    env = await startOperatorEnv({ startOperator: false });
    env.aws.setEcrTokenLifetime(tokenLifetimeMs);
    await createNamespaces(env, crName, namespaceCount);
    await createPullSecretCr(env, crName, { secretName, namespaces: [`${crName}-*`], refreshInterval });
    operator = await startOperatorAs(env, "reliability-alerts", ["--leader-elect=false"]);
    await waitForCr(env, crName, { synced: namespaceCount });
    monitoring = await chartMonitoring({
      set: [
        `metrics.prometheusRule.tokenExpiryThresholdSeconds=${tokenExpiryThresholdSeconds}`,
        `metrics.prometheusRule.refreshFailingFor=${failingFor}`,
        `metrics.prometheusRule.notReadyFor=${failingFor}`,
      ],
    });
    prometheus = await startPrometheus({
      ruleGroups: monitoring.ruleGroups,
      targets: [{ address: operator.metrics, labels: monitoring.targetLabels }],
    });
  });

  after(async () => {
    await stopStarted(prometheus, operator?.proc, env);
  });

  /** When the managed Secrets' token expires (ms); they all hold the same one. */
  async function secretsExpireAt(ready: OperatorEnv): Promise<number> {
    const secrets = (await ready.core.listSecretForAllNamespaces({ labelSelector: MANAGED_SECRETS_SELECTOR }))
      .items;
    const expiries = new Set(secrets.map((s) => s.metadata?.annotations?.[EXPIRES_AT_ANNOTATION] ?? ""));
    assert.equal(secrets.length, namespaceCount);
    assert.equal(expiries.size, 1, `the Secrets hold different tokens: ${[...expiries].join(", ")}`);
    return Date.parse([...expiries][0] ?? "");
  }

  /** The time each alert was first seen in each state, polled until `done` holds. */
  async function watchAlerts(
    prom: Prometheus,
    seen: Map<string, { pending?: number; firing?: number; resolved?: number }>,
    done: (active: readonly PromAlert[]) => boolean,
    options: { timeoutMs: number; message: string },
  ): Promise<void> {
    await eventually(
      async () => {
        const active = await prom.alerts();
        const now = Date.now();
        for (const alert of active) {
          const name = alert.labels.alertname ?? "";
          const entry = seen.get(name) ?? {};
          entry[alert.state] ??= now;
          seen.set(name, entry);
        }
        for (const [name, entry] of seen) {
          if (!active.some((a) => a.labels.alertname === name)) entry.resolved ??= now;
        }
        assert.ok(
          done(active),
          `active: ${active.map((a) => `${a.labels.alertname ?? ""}=${a.state}`).join(", ")}`,
        );
      },
      { ...options, intervalMs: 500 },
    );
  }

  function firing(active: readonly PromAlert[], name: string): boolean {
    return active.some((a) => a.labels.alertname === name && a.state === "firing");
  }

  it("fires the refresh-failing, not-ready and expiring-soon alerts during an AWS outage, before the token expires, resolves them after, and fills every dashboard panel", async () => {
    await scenario(
      "F10",
      "AWS outage seen by the chart's alerts on a real Prometheus",
      async (figures: Figures) => {
        assert.ok(env !== undefined && prometheus !== undefined && operator !== undefined);
        const [ready, prom] = [env, prometheus];
        const selector = `job="${monitoring.targetLabels.job ?? ""}", namespace="${monitoring.targetLabels.namespace ?? ""}"`;
        Object.assign(figures, {
          tokenLifetimeSeconds: tokenLifetimeMs / 1000,
          refreshInterval,
          thresholdSeconds: tokenExpiryThresholdSeconds,
          refreshFailingFor: failingFor,
          notReadyFor: failingFor,
        });
        const startedAt = Date.now();
        // Until its first scrape Prometheus has no `up` and ECRCredsRefresherDown is pending, as
        // after any Prometheus restart; the quiet window starts once the scrape has been evaluated.
        await eventually(
          async () => {
            const up = await prom.query(`up{${selector}} == 1`);
            assert.equal(up.length, 1, "the operator not scraped yet");
            assert.deepEqual(await prom.alerts(), []);
          },
          { timeoutMs: 30_000, intervalMs: 250, message: "the operator scraped and no alert active" },
        );
        const quietFrom = Date.now();
        // Quiet while refreshes work: at full scale through a refresh Prometheus watched (the token's
        // time left falls to 7 minutes, above the threshold, and jumps back).
        await eventually(
          async () => {
            const mints = await prom.query(
              `ecr_creds_refresher_token_mints_total{${selector}, result="success"}`,
            );
            assert.ok(Number(mints[0]?.values[0]?.[1] ?? 0) >= (isFull ? 2 : 1), "no refresh scraped yet");
          },
          { timeoutMs: 120_000, intervalMs: 500, message: "a token refresh seen by Prometheus" },
        );
        const quietSeconds = Math.floor((Date.now() - quietFrom) / 1000);
        if (quietSeconds > 1) {
          const early = await prom.query(`count_over_time(ALERTS[${quietSeconds - 1}s])`);
          assert.deepEqual(early, [], "an alert was pending while refreshes worked");
        }
        assert.deepEqual(await prom.alerts(), [], "an alert is active before the outage");
        figures.quietBeforeOutageSeconds = quietSeconds;

        const expiresAt = await secretsExpireAt(ready);
        const faultAt = Date.now();
        ready.aws.setFault("error");
        const seen = new Map<string, { pending?: number; firing?: number; resolved?: number }>();
        const wanted: string[] = isFull
          ? [alertNames.refreshFailing, alertNames.notReady, alertNames.expiringSoon]
          : [alertNames.refreshFailing, alertNames.notReady];
        let clearedAt = 0;
        try {
          await watchAlerts(prom, seen, (active) => wanted.every((name) => firing(active, name)), {
            timeoutMs: tokenLifetimeMs + 120_000,
            message: `${wanted.join(", ")} firing`,
          });
          const firstFailure = ready.aws
            .calls()
            .find((c) => c.operation === tokenCall && c.at >= faultAt)?.at;
          assert.ok(firstFailure !== undefined, "no token refresh was attempted during the outage");
          figures.firstFailedCallAfterSeconds = secondsBetween(faultAt, firstFailure);
          const firedAfter = (name: string): number =>
            secondsBetween(faultAt, seen.get(name)?.firing ?? Number.NaN);
          figures.refreshFailingFiringAfterSeconds = firedAfter(alertNames.refreshFailing);
          figures.notReadyFiringAfterSeconds = firedAfter(alertNames.notReady);
          if (isFull) {
            const expiringAt = seen.get(alertNames.expiringSoon)?.firing ?? Number.NaN;
            figures.expiringSoonFiringAfterSeconds = secondsBetween(faultAt, expiringAt);
            figures.expiringSoonSecondsBeforeExpiry = secondsBetween(expiringAt, expiresAt);
            assert.ok(expiringAt < expiresAt, "ExpiringSoon fired only after the token had expired");
            assert.equal(
              await secretsExpireAt(ready),
              expiresAt,
              "the Secrets' token changed during the outage",
            );
          }

          // Every panel, with the dashboard's own variables resolved, over the scenario so far.
          const variables = await dashboardVariables(monitoring.dashboard, prom, {
            namespace: monitoring.targetLabels.namespace ?? "",
            job: monitoring.targetLabels.job ?? "",
          });
          const results = await panelQueries(monitoring.dashboard, prom, variables, {
            start: startedAt / 1000,
            end: Date.now() / 1000,
            stepSeconds: 5,
          });
          const panels = [...new Set(results.map((r) => r.panel))];
          const empty = panels.filter((p) =>
            results.filter((r) => r.panel === p).every((r) => r.series === 0),
          );
          figures.panelsWithData = `${panels.length - empty.length}/${panels.length}`;
          figures.queriesWithData = `${results.filter((r) => r.series > 0).length}/${results.length}`;
          figures.emptyQueries = results
            .filter((r) => r.series === 0)
            .map((r) => `${r.panel} ${r.refId}`)
            .join(", ");
          assert.ok(panels.length >= 8, `only ${panels.length} panels with queries`);
          assert.deepEqual(empty, [], "dashboard panels without data");
        } finally {
          ready.aws.setFault("none");
          clearedAt = Date.now();
        }

        await waitForCr(ready, crName, {
          synced: namespaceCount,
          timeoutMs: (backoffCapSeconds + 60) * 1000,
        });
        const recoveredAt = Date.now();
        figures.recoverySeconds = secondsBetween(clearedAt, recoveredAt);
        if (isFull) {
          // RefreshFailing holds for its rate window after the last failed call.
          const lastFailure = Math.max(
            ...ready.aws
              .calls()
              .filter((c) => c.operation === tokenCall && c.at < clearedAt)
              .map((c) => c.at),
          );
          await watchAlerts(prom, seen, (active) => active.length === 0, {
            timeoutMs: Math.max(0, lastFailure + refreshFailingWindowSeconds * 1000 - Date.now()) + 120_000,
            message: "every alert resolved",
          });
          const resolvedAfter = (name: string): number =>
            secondsBetween(recoveredAt, seen.get(name)?.resolved ?? Number.NaN);
          figures.expiringSoonResolvedAfterRecoverySeconds = resolvedAfter(alertNames.expiringSoon);
          figures.notReadyResolvedAfterRecoverySeconds = resolvedAfter(alertNames.notReady);
          figures.refreshFailingResolvedAfterLastFailureSeconds = secondsBetween(
            lastFailure,
            seen.get(alertNames.refreshFailing)?.resolved ?? Number.NaN,
          );
          assert.ok(
            (seen.get(alertNames.refreshFailing)?.resolved ?? 0) - lastFailure <=
              (refreshFailingWindowSeconds + 60) * 1000,
          );
        }
        // Every alert about failing refreshes may fire (a per-registry one too); the operator never stopped.
        figures.alertsSeen = [...seen.keys()].sort().join(", ");
        assert.equal(seen.get(alertNames.down), undefined, "ECRCredsRefresherDown while the operator was up");
        assert.equal(operator.proc.process.child.exitCode, null, "the operator exited");
      },
    );
  });

  it("never puts a secret in a log line, Event or status while Prometheus watches an AWS outage", async () => {
    await scenario("L8", "no secret leaked: alerts on a real Prometheus", async (figures) => {
      assert.ok(env !== undefined && operator !== undefined);
      await operator.proc.stop();
      logs.push(...operator.proc.logs());
      saveLogs("monitoring", logs);
      const scan = await assertNoLeaks(figures, {
        core: env.core,
        objects: env.objects,
        logs,
        secrets: secretValues(),
      });
      assert.ok(scan.logLines > 10);
    });
  });
});
