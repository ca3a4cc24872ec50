// One registry's AWS failing for minutes while the CR's other registries work: ECR Public answering
// 5xx, and one region's ECR throttling, injected at the AWS proxy for that service or region only.
// The operator process keeps the failing host's last good entry, keeps refreshing and writing the
// others, backs off on the failing token, says which host fails in status and metrics, and adds the
// fresh token within one backoff period once AWS answers again.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Secret } from "@kubernetes/client-node";
import { MANAGED_SECRETS_SELECTOR } from "../../src/controller/plan/labels.ts";
import { defaultBackoff } from "../../src/kube/workqueue.ts";
import type { Fault, FaultScope } from "../harness/aws-proxy.ts";
import {
  ecrPublicTarget,
  startEcrPublicStandIn,
  type EcrPublicStandIn,
} from "../harness/ecr-public-standin.ts";
import { createPullSecretCr, readCr, startOperatorEnv, type OperatorEnv } from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";
import {
  createNamespaces,
  logRecords,
  metricValue,
  readyOf,
  scrape,
  startOperatorAs,
  waitForCr,
  type RunningOperator,
} from "./fixtures.ts";
import { registryHosts, SecretLedger } from "./ledger.ts";
import { assertNoLeaks, secretValues } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween, type Figures } from "./results.ts";
import { byScale } from "./scale.ts";

const crName = "registries";
const secretName = "registries-pull";
const namespaceCount = byScale(10, 50);
const hosts = {
  euWest: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  usEast: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
  public: "public.ecr.aws",
};
const backoffCapSeconds = defaultBackoff.maxMs / 1000;
/** HTTP calls per mint: the SDK clients make maxAttempts = 2. */
const callsPerMint = 2;

interface Outage {
  /** The host whose token fails. */
  host: string;
  fault: Exclude<Fault, "none">;
  scope: FaultScope;
  /** The AWS operation of the failing token, and the region it is signed for. */
  operation: string;
  region: string;
  /** What the Ready message must say about the failure. */
  message: RegExp;
}

const outages: Record<"public" | "region", Outage> = {
  public: {
    host: hosts.public,
    fault: "error",
    scope: { service: "ecr-public" },
    operation: "ecr-public:GetAuthorizationToken",
    region: "us-east-1",
    message: /ServerException/,
  },
  region: {
    host: hosts.usEast,
    fault: "throttle",
    scope: { service: "ecr", region: "us-east-1" },
    operation: "ecr:GetAuthorizationToken",
    region: "us-east-1",
    message: /ThrottlingException/,
  },
};

describe("one registry's AWS failing while the others work", () => {
  let env: OperatorEnv;
  let ecrPublic: EcrPublicStandIn;
  let ledger: SecretLedger;
  let operator: RunningOperator;

  async function managedSecrets(): Promise<V1Secret[]> {
    const list = await env.core.listSecretForAllNamespaces({ labelSelector: MANAGED_SECRETS_SELECTOR });
    return list.items.filter((s) => s.metadata?.name === secretName);
  }

  /** The password each Secret holds for `host`, by namespace. */
  async function passwords(host: string): Promise<Map<string, string | undefined>> {
    return new Map(
      (await managedSecrets()).map((s) => {
        const config = JSON.parse(Buffer.from(s.data?.[".dockerconfigjson"] ?? "", "base64").toString()) as {
          auths: Record<string, { password?: string } | undefined>;
        };
        return [s.metadata?.namespace ?? "", config.auths[host]?.password];
      }),
    );
  }

  /**
   * The retry delay the operator had scheduled for the CR when the fault ended: its last "will be
   * retried" line before then gives the retry count, and the workqueue's backoff the delay.
   */
  function scheduledRetrySeconds(until: number): number {
    const retries = logRecords(operator.proc.logs())
      .filter(
        (r) => r.msg === "reconcile will be retried" && r.cr === crName && Date.parse(r.time ?? "") <= until,
      )
      .at(-1)?.retries;
    assert.ok(retries !== undefined, "no retry logged during the fault");
    return Math.min(backoffCapSeconds, (defaultBackoff.baseMs / 1000) * 2 ** (retries - 1));
  }

  function callTimes(
    operation: string,
    region: string,
    since: number,
    until = Number.POSITIVE_INFINITY,
  ): number[] {
    return env.aws
      .calls()
      .filter((c) => c.operation === operation && c.region === region && c.at >= since && c.at <= until)
      .map((c) => c.at);
  }

  before(async () => {
    env = await startOperatorEnv({ startOperator: false });
    ecrPublic = await startEcrPublicStandIn();
    env.aws.routeTarget(ecrPublicTarget, ecrPublic.endpoint);
    // A new password with every private token, so that each refresh shows in the Secrets.
    let minted = 0;
    env.aws.setEcrTokenPassword((region) => `${region ?? "unsigned"}-token-${++minted}`);
    await createNamespaces(env, "reg", namespaceCount);
    ledger = new SecretLedger({ kubeConfig: env.plane.kubeConfig, secretName });
    await ledger.start();
    // refreshInterval 1m: every token is due each minute, so a fault window meets refreshes of both kinds.
    await createPullSecretCr(env, crName, {
      secretName,
      namespaces: ["reg-*"],
      registries: Object.values(hosts),
      refreshInterval: "1m",
    });
    operator = await startOperatorAs(env, "reliability-registries", ["--leader-elect=false"]);
    await waitForCr(env, crName, { synced: namespaceCount });
  });

  after(async () => {
    await operator.proc.stop();
    await ledger.stop();
    await env.stop();
    await ecrPublic.stop();
  });

  async function outageWindow(figures: Figures, outage: Outage, windowMs: number): Promise<void> {
    await waitForCr(env, crName, { synced: namespaceCount });
    const healthy = Object.values(hosts).filter((h) => h !== outage.host);
    const lostBefore = ledger.lost() + ledger.droppedEntries.length;
    const failingBefore = await passwords(outage.host);
    assert.equal(failingBefore.size, namespaceCount);
    assert.ok(
      [...failingBefore.values()].every((p) => p !== undefined),
      "every Secret holds the host first",
    );
    const healthyBefore = await passwords(hosts.euWest);
    const faultAt = Date.now();
    env.aws.setFault(outage.fault, outage.scope);
    figures.failingHost = outage.host;
    figures.windowSeconds = windowMs / 1000;
    let firstFailure = 0;
    try {
      // The failing token falls due within a minute of its last refresh.
      firstFailure = await eventually(
        () => {
          const first = callTimes(outage.operation, outage.region, faultAt)[0];
          assert.ok(first !== undefined, "no refresh attempted yet");
          return first;
        },
        { timeoutMs: 90_000, intervalMs: 200, message: "a refresh of the failing token" },
      );
      const failing = await eventually(
        async () => {
          const ready = readyOf(await readCr(env, crName));
          assert.equal(ready.reason, "PartiallyRefreshed", ready.message);
          return ready.message;
        },
        { timeoutMs: 60_000, message: "Ready=False/PartiallyRefreshed" },
      );
      assert.ok(failing.includes(`failing: ${outage.host} (last good token kept until`), failing);
      assert.match(failing, outage.message);
      for (const host of healthy) assert.ok(!failing.includes(`${host} (`), `${host} named as failing`);
      figures.statusMessage = failing.slice(0, 160);

      const metrics = await eventually(
        async () => {
          const text = await scrape(operator.metrics);
          const labels = { ecrpullsecret: crName, registry: outage.host };
          assert.equal(metricValue(text, "ecr_creds_refresher_registry_refresh_failing", labels), 1);
          return text;
        },
        { timeoutMs: 30_000, message: "registry_refresh_failing for the failing host" },
      );
      for (const host of healthy) {
        const labels = { ecrpullsecret: crName, registry: host };
        assert.equal(metricValue(metrics, "ecr_creds_refresher_registry_refresh_failing", labels), 0, host);
      }
      figures.failingMetricHostsOnly = outage.host;

      // The healthy tokens are refreshed and written while the failing one is retried.
      await eventually(
        async () => {
          const now = await passwords(hosts.euWest);
          const stale = [...now].filter(([ns, password]) => password === healthyBefore.get(ns)).length;
          assert.equal(stale, 0, `${stale} Secrets still hold eu-west-1's token from before the fault`);
        },
        { timeoutMs: 150_000, intervalMs: 1000, message: "eu-west-1 refreshed during the fault" },
      );
      await eventually(
        () => {
          assert.ok(Date.now() - firstFailure >= windowMs);
        },
        { timeoutMs: windowMs + 10_000, intervalMs: 1000, message: "fault window" },
      );
      const during = await passwords(outage.host);
      const changed = [...failingBefore].filter(([ns, password]) => during.get(ns) !== password).length;
      figures.failingEntriesChanged = changed;
      assert.equal(changed, 0, "the failing host's last good entry was not kept in every Secret");
    } finally {
      env.aws.setFault("none", outage.scope);
    }
    const clearedAt = Date.now();
    const calls = callTimes(outage.operation, outage.region, faultAt, clearedAt);
    const gaps = calls.slice(1).map((t, i) => t - (calls[i] ?? t));
    const period = scheduledRetrySeconds(clearedAt);
    figures.callsDuringFault = calls.length;
    figures.longestRetryGapSeconds = Math.round(Math.max(0, ...gaps) / 100) / 10;
    const healthyMints = healthy
      .filter((h) => h !== hosts.public)
      .map((h) => (h === hosts.euWest ? "eu-west-1" : "us-east-1"))
      .flatMap((region) => callTimes("ecr:GetAuthorizationToken", region, faultAt, clearedAt)).length;
    figures.healthyMintsDuringFault = healthyMints;
    // About two retries per doubling of the backoff, as when all of AWS fails; each healthy refresh
    // rewrites the Secrets, which brings the CR back at once, so it may add a retry of the failing
    // token.
    const bound = callsPerMint * (Math.ceil(Math.log2(windowMs / 500)) + 4 + healthyMints);
    figures.callBound = bound;
    assert.ok(calls.length <= bound, `${calls.length} calls in ${windowMs / 1000} s (bound ${bound})`);

    const recoveredAt = await eventually(
      async () => {
        const cr = await readCr(env, crName);
        const status = cr.status?.registries?.find((r) => r.host === outage.host);
        assert.ok(status !== undefined && status.lastError === undefined, "the host still fails");
        assert.ok(
          Date.parse(status.lastRefreshTime ?? "") >= clearedAt - 1000,
          "not refreshed since the fault",
        );
        if (outage.host !== hosts.public) {
          const now = await passwords(outage.host);
          const stale = [...now].filter(([ns, password]) => password === failingBefore.get(ns)).length;
          assert.equal(stale, 0, `${stale} Secrets still hold the token from before the fault`);
        }
        return Date.now();
      },
      { timeoutMs: (backoffCapSeconds + 60) * 1000, intervalMs: 500, message: "the failing host refreshed" },
    );
    await waitForCr(env, crName, { synced: namespaceCount });
    const recovery = secondsBetween(clearedAt, recoveredAt);
    figures.recoverySeconds = recovery;
    // Within one backoff period: the retry the operator had scheduled when AWS came back.
    figures.backoffPeriodSeconds = Math.round(period * 10) / 10;
    assert.ok(recovery <= period + 15, `recovered after ${recovery} s, backoff period ${period} s`);

    figures.secretsDeleted = ledger.deleted.length;
    figures.secretsEmptied = ledger.emptied.length;
    figures.secretsRecreated = ledger.recreated.length;
    figures.entriesDropped = ledger.droppedEntries.length;
    figures.lost = ledger.lost() + ledger.droppedEntries.length - lostBefore;
    assert.equal(
      figures.lost,
      0,
      `lost: ${[...ledger.deleted, ...ledger.emptied, ...ledger.droppedEntries].join(", ")}`,
    );
    const secrets = await managedSecrets();
    assert.ok(secrets.every((s) => registryHosts(s).length === Object.keys(hosts).length));
    assert.equal(operator.proc.process.child.exitCode, null, "the operator exited");
  }

  it("keeps ECR Public's last good entry through minutes of 5xx, refreshes the others, and recovers", async () => {
    await scenario("F11a", "ECR Public fails for minutes; the CR's other registries work", (figures) =>
      outageWindow(figures, outages.public, byScale(20_000, 180_000)),
    );
  });

  it("keeps one region's last good entry through minutes of throttling, refreshes the others, and recovers", async () => {
    await scenario(
      "F11b",
      "one region's ECR throttles for minutes; the CR's other registries work",
      (figures) => outageWindow(figures, outages.region, byScale(20_000, 180_000)),
    );
  });

  it("never puts a secret in a log line, Event or status during a registry outage", async () => {
    await scenario("L9", "no secret leaked: one registry failing", async (figures) => {
      await operator.proc.stop();
      const logs = operator.proc.logs();
      saveLogs("registry-outage", logs);
      const tokens = [
        ecrPublic.password,
        ...[...(await passwords(hosts.euWest)).values()].flatMap((p) => p ?? []),
      ];
      const scan = await assertNoLeaks(figures, {
        core: env.core,
        objects: env.objects,
        logs,
        secrets: secretValues(tokens),
      });
      assert.ok(scan.logLines > 10);
    });
  });
});
