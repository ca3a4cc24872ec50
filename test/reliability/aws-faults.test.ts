// AWS faults (errors, throttling and hanging connections through the proxy in front of moto, for
// minutes) and the AWS side of bad input (an unreachable endpoint, an unknown region), against the
// operator as a process: its metrics are scraped and a crash would show as an exit.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Secret } from "@kubernetes/client-node";
import { MANAGED_SECRETS_SELECTOR, REFRESHED_AT_ANNOTATION } from "../../src/controller/plan/labels.ts";
import type { Fault } from "../harness/aws-proxy.ts";
import { createPullSecretCr, readCr, startOperatorEnv, type OperatorEnv } from "../harness/operator-env.ts";
import { freePort } from "../harness/ports.ts";
import { eventually } from "../harness/wait.ts";
import {
  createNamespaces,
  metricValue,
  operatorArgs,
  readyOf,
  scrape,
  startOperatorAs,
  waitForCr,
  type RunningOperator,
} from "./fixtures.ts";
import { SecretLedger } from "./ledger.ts";
import { assertNoLeaks, secretValues } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween, type Figures } from "./results.ts";
import { byScale, fullScaleOnly } from "./scale.ts";

const secretName = "aws-pull";
const namespaceCount = byScale(10, 50);
const tokenCall = "ecr:GetAuthorizationToken";
/** The workqueue's retry backoff: 0.5 s doubling per failure, capped at 5 minutes. */
const backoffCapSeconds = 300;

interface FaultCase {
  fault: Exclude<Fault, "none">;
  /** What the status message and the metric must say. */
  message: RegExp;
  errorKind: string;
}

const faultCases: Record<"error" | "throttle" | "hang", FaultCase> = {
  error: { fault: "error", message: /ServerException|server error/i, errorKind: "Unavailable" },
  throttle: { fault: "throttle", message: /Throttl|Rate exceeded/i, errorKind: "Throttled" },
  hang: { fault: "hang", message: /timed out|timeout/i, errorKind: "Unavailable" },
};

describe("AWS faults", () => {
  let env: OperatorEnv;
  let ledger: SecretLedger;
  let operator: RunningOperator | undefined;
  const logs: string[] = [];

  async function startOperator(args: readonly string[] = []): Promise<RunningOperator> {
    const running = await startOperatorAs(env, "reliability-aws", ["--leader-elect=false", ...args]);
    operator = running;
    return running;
  }

  async function stopOperator(): Promise<void> {
    if (operator === undefined) return;
    await operator.proc.stop();
    logs.push(...operator.proc.logs());
    operator = undefined;
  }

  async function managedSecrets(): Promise<V1Secret[]> {
    const list = await env.core.listSecretForAllNamespaces({ labelSelector: MANAGED_SECRETS_SELECTOR });
    return list.items.filter((s) => s.metadata?.name === secretName);
  }

  function versions(secrets: readonly V1Secret[]): string {
    return secrets
      .map((s) => `${s.metadata?.namespace ?? ""}=${s.metadata?.resourceVersion ?? ""}`)
      .sort()
      .join(",");
  }

  /** Secrets of `before` that are gone or carry another resourceVersion in `after`. */
  function changed(before: readonly V1Secret[], after: readonly V1Secret[]): number {
    const now = new Map(after.map((s) => [s.metadata?.namespace, s.metadata?.resourceVersion]));
    return before.filter((s) => now.get(s.metadata?.namespace) !== s.metadata?.resourceVersion).length;
  }

  function callTimes(since: number, until = Number.POSITIVE_INFINITY): number[] {
    return env.aws
      .calls()
      .filter((c) => c.operation === tokenCall && c.at >= since && c.at <= until)
      .map((c) => c.at);
  }

  /** Waits until every managed Secret carries a token minted after `since`; returns when. */
  async function refreshedAfter(since: number, timeoutMs: number): Promise<number> {
    await eventually(
      async () => {
        const secrets = await managedSecrets();
        assert.equal(secrets.length, namespaceCount);
        const stale = secrets.filter(
          (s) => Date.parse(s.metadata?.annotations?.[REFRESHED_AT_ANNOTATION] ?? "") < since - 1000,
        );
        assert.equal(stale.length, 0, `${stale.length} Secrets still hold the old token`);
      },
      { timeoutMs, intervalMs: 500, message: "Secrets refreshed after the fault" },
    );
    return Date.now();
  }

  before(async () => {
    env = await startOperatorEnv({ startOperator: false });
    await createNamespaces(env, "aws", namespaceCount);
    ledger = new SecretLedger({ kubeConfig: env.plane.kubeConfig, secretName });
    await ledger.start();
    // refreshInterval 1m: the token is due every minute, so every fault window meets refreshes.
    await createPullSecretCr(env, "aws", { secretName, namespaces: ["aws-*"], refreshInterval: "1m" });
    await startOperator();
    await waitForCr(env, "aws", { synced: namespaceCount });
  });

  after(async () => {
    await stopOperator();
    await ledger.stop();
    await env.stop();
  });

  /** One fault for `windowMs` from the first failed refresh, then recovery. */
  async function faultWindow(figures: Figures, fault: FaultCase, windowMs: number): Promise<void> {
    const running = operator;
    assert.ok(running !== undefined);
    await waitForCr(env, "aws", { synced: namespaceCount });
    const before = await managedSecrets();
    const modificationsBefore = [...ledger.modifications.values()].reduce((a, b) => a + b, 0);
    const deletedBefore = ledger.deleted.length;
    const faultAt = Date.now();
    env.aws.setFault(fault.fault);
    figures.windowSeconds = windowMs / 1000;
    let firstFailure = 0;
    try {
      // The token falls due within a minute of its last refresh.
      firstFailure = await eventually(
        () => {
          const first = callTimes(faultAt)[0];
          assert.ok(first !== undefined, "no refresh attempted yet");
          return first;
        },
        { timeoutMs: 90_000, intervalMs: 200, message: "a refresh attempt during the fault" },
      );
      // Status and metrics say what is wrong while it lasts.
      const failing = await eventually(
        async () => {
          const cr = await readCr(env, "aws");
          const ready = readyOf(cr);
          assert.equal(ready.status, "False");
          assert.equal(ready.reason, "TokenRefreshFailed");
          return ready.message;
        },
        { timeoutMs: 60_000, message: "Ready=False/TokenRefreshFailed" },
      );
      assert.match(failing, fault.message);
      figures.statusMessage = failing.slice(0, 120);
      const metrics = await eventually(
        async () => {
          const text = await scrape(running.metrics);
          assert.ok(metricValue(text, "ecr_creds_refresher_aws_errors_total", { kind: fault.errorKind }) > 0);
          return text;
        },
        { timeoutMs: 30_000, message: `aws_errors_total{kind="${fault.errorKind}"}` },
      );
      assert.equal(
        metricValue(metrics, "ecr_creds_refresher_ecrpullsecret_ready", { ecrpullsecret: "aws" }),
        0,
      );
      assert.ok(metricValue(metrics, "ecr_creds_refresher_token_mints_total", { result: "error" }) > 0);
      await eventually(
        () => {
          assert.ok(Date.now() - firstFailure >= windowMs);
        },
        { timeoutMs: windowMs + 10_000, intervalMs: 1000, message: "fault window" },
      );
      const after = await managedSecrets();
      figures.secretsWrittenDuringFault = changed(before, after);
      assert.equal(versions(after), versions(before), "the existing Secrets were written during the fault");
    } finally {
      env.aws.setFault("none");
    }
    const clearedAt = Date.now();
    const calls = callTimes(faultAt, clearedAt);
    const gaps = calls.slice(1).map((t, i) => t - (calls[i] ?? t));
    const lastGapSeconds = Math.max(0, ...gaps.slice(-2)) / 1000;
    figures.callsDuringFault = calls.length;
    figures.longestRetryGapSeconds = Math.round(Math.max(0, ...gaps) / 100) / 10;
    // A fixed 1 s retry would make windowSeconds calls; backoff makes about 2 per doubling.
    const bound = 2 * (Math.ceil(Math.log2(windowMs / 500)) + 4);
    figures.callBound = bound;
    assert.ok(calls.length <= bound, `${calls.length} calls in ${windowMs / 1000} s (bound ${bound})`);

    const recoveredAt = await refreshedAfter(clearedAt, (backoffCapSeconds + 60) * 1000);
    await waitForCr(env, "aws", { synced: namespaceCount });
    const recovery = secondsBetween(clearedAt, recoveredAt);
    figures.recoverySeconds = recovery;
    // Within one backoff period: the next retry comes at most twice the last gap later.
    const period = Math.min(backoffCapSeconds, Math.max(2 * lastGapSeconds, 5));
    figures.backoffPeriodSeconds = Math.round(period * 10) / 10;
    assert.ok(recovery <= period + 15, `recovered after ${recovery} s, backoff period ${period} s`);
    const modifications = [...ledger.modifications.values()].reduce((a, b) => a + b, 0) - modificationsBefore;
    figures.secretsDeleted = ledger.deleted.length - deletedBefore;
    figures.secretsEmptied = ledger.emptied.length;
    assert.equal(figures.secretsDeleted, 0);
    assert.equal(ledger.emptied.length, 0);
    figures.secretsRewrittenOnRecovery = modifications;
    assert.equal(running.proc.process.child.exitCode, null, "the operator exited");
  }

  const windowMs = byScale(20_000, 180_000);

  it(
    "keeps the Secrets through minutes of AWS 5xx errors, backs off, and recovers within one backoff period",
    fullScaleOnly,
    async () => {
      await scenario("F4a", "AWS returns 5xx errors for minutes", (figures) =>
        faultWindow(figures, faultCases.error, windowMs),
      );
    },
  );

  it(
    "keeps the Secrets through minutes of AWS throttling, backs off, and recovers within one backoff period",
    fullScaleOnly,
    async () => {
      await scenario("F4b", "AWS throttles for minutes", (figures) =>
        faultWindow(figures, faultCases.throttle, windowMs),
      );
    },
  );

  it(
    "keeps the Secrets through minutes of hanging AWS connections, and recovers within one backoff period",
    fullScaleOnly,
    async () => {
      await scenario("F4c", "AWS connections hang for minutes", (figures) =>
        faultWindow(figures, faultCases.hang, windowMs),
      );
    },
  );

  it("keeps the last good Secrets when the operator restarts during an AWS outage", async () => {
    await scenario("F4d", "operator restarted during an AWS outage", async (figures) => {
      await waitForCr(env, "aws", { synced: namespaceCount });
      const before = await managedSecrets();
      const deletedBefore = ledger.deleted.length;
      env.aws.setFault("error");
      const faultAt = Date.now();
      try {
        await stopOperator();
        const running = await startOperator();
        // A fresh process holds only what it can read back from the Secrets: once that token is
        // due (within the 1m refreshInterval) it must fail to refresh and write nothing.
        await eventually(
          async () => {
            const ready = readyOf(await readCr(env, "aws"));
            assert.equal(ready.reason, "TokenRefreshFailed");
          },
          { timeoutMs: 90_000, message: "TokenRefreshFailed after the restart" },
        );
        const outageMs = byScale(10_000, 60_000);
        await eventually(
          () => {
            assert.ok(Date.now() - faultAt >= outageMs);
          },
          { timeoutMs: outageMs + 5_000, intervalMs: 500, message: "outage window" },
        );
        figures.outageSeconds = outageMs / 1000;
        const after = await managedSecrets();
        figures.secretsWrittenDuringOutage = changed(before, after);
        assert.equal(versions(after), versions(before), "a Secret was written without a token");
        figures.callsDuringOutage = callTimes(faultAt).length;
        assert.equal(running.proc.process.child.exitCode, null);
      } finally {
        env.aws.setFault("none");
      }
      const clearedAt = Date.now();
      await refreshedAfter(clearedAt, (backoffCapSeconds + 60) * 1000);
      await waitForCr(env, "aws", { synced: namespaceCount });
      figures.recoverySeconds = secondsBetween(clearedAt, Date.now());
      figures.secretsDeleted = ledger.deleted.length - deletedBefore;
      figures.secretsEmptied = ledger.emptied.length;
      assert.equal(figures.secretsDeleted, 0);
      assert.equal(ledger.emptied.length, 0);
    });
  });

  it("reports an unreachable AWS endpoint in status and keeps the Secrets", async () => {
    await scenario("B4", "unreachable AWS endpoint", async (figures) => {
      const before = await managedSecrets();
      await stopOperator();
      const closedPort = await freePort();
      const args = operatorArgs(env).map((arg) =>
        arg === env.aws.endpoint ? `http://127.0.0.1:${closedPort}` : arg,
      );
      const unreachable = await startOperatorAs(env, "reliability-unreachable", ["--leader-elect=false"], {
        operatorArgs: args,
      });
      try {
        const message = await eventually(
          async () => {
            const ready = readyOf(await readCr(env, "aws"));
            assert.equal(ready.reason, "TokenRefreshFailed");
            return ready.message;
          },
          { timeoutMs: 90_000, message: "TokenRefreshFailed with an unreachable endpoint" },
        );
        figures.statusMessage = message.slice(0, 160);
        assert.match(message, /ECONNREFUSED|could not be reached|unreachable|connect/i);
        const after = await managedSecrets();
        figures.secretsWritten = changed(before, after);
        assert.equal(versions(after), versions(before));
        assert.equal(unreachable.proc.process.child.exitCode, null);
      } finally {
        await unreachable.proc.stop();
        logs.push(...unreachable.proc.logs());
      }
      await startOperator();
      await waitForCr(env, "aws", { synced: namespaceCount });
    });
  });

  it("reports an unknown region in status, and other CRs keep syncing", async () => {
    await scenario("B5", "unknown AWS region", async (figures) => {
      // moto serves any region name; AWS does not.
      env.aws.setKnownRegions(["eu-west-1", "us-east-1"]);
      await createPullSecretCr(env, "nowhere", {
        secretName: "nowhere-pull",
        namespaces: ["aws-0000"],
        region: "xx-nowhere-9",
      });
      const cr = await eventually(
        async () => {
          const current = await readCr(env, "nowhere");
          const ready = readyOf(current);
          assert.equal(ready.status, "False", `${ready.reason}: ${ready.message}`);
          assert.notEqual(ready.reason, "");
          return current;
        },
        { timeoutMs: 60_000, message: "the unknown region reported" },
      );
      const ready = readyOf(cr);
      figures.reason = ready.reason;
      figures.statusMessage = ready.message.slice(0, 160);
      assert.match(ready.message, /xx-nowhere-9/);
      assert.match(ready.message, /region/);
      assert.doesNotMatch(ready.message, /AWS_SECRET_ACCESS_KEY/, "the message blames the secret key");
      await assert.rejects(env.core.readNamespacedSecret({ namespace: "aws-0000", name: "nowhere-pull" }));
      // Other CRs keep syncing: a new namespace gets the good CR's Secret.
      await createNamespaces(env, "aws-late", 1);
      await waitForCr(env, "aws", { synced: namespaceCount + 1 });
      env.aws.setKnownRegions(undefined);
    });
  });

  it("never puts a secret in a log line, Event or status during AWS faults", async () => {
    await scenario("L2", "no secret leaked: AWS faults", async (figures) => {
      await stopOperator();
      saveLogs("aws-faults", logs);
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
